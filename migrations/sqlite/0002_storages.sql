-- Cloud storages (import and export, every kind in one table), the links that remember which
-- object became which task and which annotation was written where, and the sync lease.
CREATE TABLE storage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES project(id) ON DELETE CASCADE,
    direction TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT,
    description TEXT,
    settings TEXT NOT NULL DEFAULT '{}',
    secrets TEXT NOT NULL DEFAULT '{}',
    synchronizable INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'initialized',
    last_sync TEXT,
    last_sync_count INTEGER,
    last_sync_job TEXT,
    traceback TEXT,
    meta TEXT NOT NULL DEFAULT '{}',
    lease_owner TEXT,
    lease_expires_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX storage_project ON storage(project_id, direction, kind);
CREATE INDEX storage_status ON storage(status);
CREATE TABLE import_link (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    storage_id INTEGER NOT NULL REFERENCES storage(id) ON DELETE CASCADE,
    task_id INTEGER NOT NULL REFERENCES task(id) ON DELETE CASCADE,
    object_key TEXT NOT NULL,
    row_index INTEGER,
    etag TEXT,
    size INTEGER,
    last_modified TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX import_link_storage_key ON import_link(storage_id, object_key);
CREATE UNIQUE INDEX import_link_task ON import_link(task_id);
CREATE TABLE export_link (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    storage_id INTEGER NOT NULL REFERENCES storage(id) ON DELETE CASCADE,
    annotation_id INTEGER NOT NULL REFERENCES annotation(id) ON DELETE CASCADE,
    object_key TEXT NOT NULL,
    annotation_updated_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX export_link_storage_annotation ON export_link(storage_id, annotation_id);
