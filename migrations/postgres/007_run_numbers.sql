-- PostgreSQL twin of ../007_run_numbers.sql.
ALTER TABLE projects ADD COLUMN last_run_number BIGINT NOT NULL DEFAULT 0;
UPDATE projects SET last_run_number = COALESCE((SELECT MAX(id) FROM runs WHERE runs.project_id = projects.id), 0);
