-- Runs created without an alias are named run-N with N counted per project
-- (it was the highest run id of all projects, which told one project how many
-- runs the others had). The last number given is kept on the project; an
-- existing project continues after its highest run id, so no run-N it was
-- given before is given again.
ALTER TABLE projects ADD COLUMN last_run_number INTEGER NOT NULL DEFAULT 0;
UPDATE projects SET last_run_number = COALESCE((SELECT MAX(id) FROM runs WHERE runs.project_id = projects.id), 0);
