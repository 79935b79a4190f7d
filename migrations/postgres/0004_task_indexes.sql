-- Indexes for the data manager and the labeling screen on large projects:
-- task pages and previous/next walk a project's tasks in id order without reading task data;
-- project and page totals, and the next task still to label, are answered from the second index
-- alone (it holds every counter they read).
CREATE INDEX task_project_order ON task(project_id, id);
CREATE INDEX task_project_progress ON task(project_id, is_labeled, id, total_annotations, cancelled_annotations, total_predictions);
