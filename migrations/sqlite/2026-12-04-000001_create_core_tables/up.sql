-- Core tables of the task ingestion API, SQLite flavour.
-- `INTEGER PRIMARY KEY` makes each id the 64-bit rowid alias.

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    project_app_id TEXT NOT NULL,
    name TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    inserted_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (organization_id, project_app_id)
);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    task_app_id TEXT NOT NULL,
    task_name TEXT NOT NULL,
    task_url TEXT,
    owner_id TEXT,
    owner_name TEXT,
    parent_task_id BIGINT REFERENCES tasks (id),
    created_at TIMESTAMP NOT NULL,
    inserted_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    -- Random per write transaction, set on insert only: tells a created row from an updated one.
    insert_token BIGINT NOT NULL,
    UNIQUE (project_id, task_app_id)
);

CREATE INDEX tasks_parent_task_id ON tasks (parent_task_id);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP,
    last_used_at TIMESTAMP
);

CREATE TABLE api_token_organizations (
    token_id BIGINT NOT NULL REFERENCES api_tokens (id),
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    PRIMARY KEY (token_id, organization_id)
);
