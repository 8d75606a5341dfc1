-- PostgreSQL twin of ../010_allow_rule_sandbox.sql.
ALTER TABLE allow_rules ADD COLUMN sandbox TEXT CHECK (sandbox IN ('read-only', 'workspace-write', 'full'));
DROP INDEX allow_rules_unique;
CREATE UNIQUE INDEX allow_rules_unique ON allow_rules (run_id, tool, md5(command), md5(cwd), md5(env), runner, sandbox);
