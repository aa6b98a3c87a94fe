-- Task listings page through one project in id order (`project_id = ? AND id > ?
-- ORDER BY id LIMIT ?`). Without this index, a listing either walks the primary
-- key past other projects' tasks or sorts all of the project's tasks.
CREATE INDEX tasks_project_id_id ON tasks (project_id, id);
