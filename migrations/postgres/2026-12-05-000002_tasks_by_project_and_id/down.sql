DROP INDEX tasks_project_id_id;
