-- Core records: organizations, users, API tokens, projects, tasks, annotations, predictions.
-- Booleans are stored as 0/1 integers and timestamps as RFC 3339 text on both engines, so the
-- same queries and row decoding work on SQLite and PostgreSQL.
CREATE TABLE organization (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE app_user (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id INTEGER NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    email TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    password_hash TEXT,
    is_active INTEGER NOT NULL DEFAULT 1,
    date_joined TEXT NOT NULL,
    last_activity TEXT NOT NULL
);
CREATE TABLE api_token (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE project (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id INTEGER NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    created_by INTEGER REFERENCES app_user(id) ON DELETE SET NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    label_config TEXT NOT NULL,
    maximum_annotations INTEGER NOT NULL DEFAULT 1,
    settings TEXT NOT NULL DEFAULT '{}',
    next_inner_id INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX project_organization ON project(organization_id);
CREATE TABLE task (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES project(id) ON DELETE CASCADE,
    data TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    inner_id INTEGER NOT NULL,
    overlap INTEGER NOT NULL DEFAULT 1,
    is_labeled INTEGER NOT NULL DEFAULT 0,
    total_annotations INTEGER NOT NULL DEFAULT 0,
    cancelled_annotations INTEGER NOT NULL DEFAULT 0,
    total_predictions INTEGER NOT NULL DEFAULT 0,
    allow_skip INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by INTEGER REFERENCES app_user(id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX task_project_inner ON task(project_id, inner_id);
CREATE TABLE annotation (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL REFERENCES task(id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL REFERENCES project(id) ON DELETE CASCADE,
    completed_by INTEGER REFERENCES app_user(id) ON DELETE SET NULL,
    result TEXT NOT NULL DEFAULT '[]',
    was_cancelled INTEGER NOT NULL DEFAULT 0,
    ground_truth INTEGER NOT NULL DEFAULT 0,
    lead_time REAL,
    import_id INTEGER,
    last_action TEXT,
    unique_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    draft_created_at TEXT,
    updated_by INTEGER REFERENCES app_user(id) ON DELETE SET NULL,
    parent_prediction INTEGER,
    parent_annotation INTEGER
);
CREATE INDEX annotation_task ON annotation(task_id);
CREATE INDEX annotation_project ON annotation(project_id);
CREATE TABLE prediction (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL REFERENCES task(id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL REFERENCES project(id) ON DELETE CASCADE,
    result TEXT NOT NULL DEFAULT '[]',
    score REAL,
    model_version TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX prediction_task ON prediction(task_id);
CREATE INDEX prediction_project ON prediction(project_id);
