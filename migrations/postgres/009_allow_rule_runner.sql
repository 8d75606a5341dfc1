-- PostgreSQL twin of ../009_allow_rule_runner.sql.
ALTER TABLE allow_rules ADD COLUMN runner TEXT NOT NULL DEFAULT '';
DROP INDEX allow_rules_unique;
CREATE UNIQUE INDEX allow_rules_unique ON allow_rules (run_id, tool, md5(command), md5(cwd), md5(env), runner);
