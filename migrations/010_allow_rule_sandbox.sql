-- An "always allow" rule also records the sandbox mode the command was
-- accepted in, and accepts a later proposal only in that mode or a narrower
-- one (read-only < workspace-write < full): a rule set for a sandboxed
-- command does not let it run without a sandbox. NULL is a rule stored
-- before this migration: it matches proposals in any mode but full. The
-- mode is part of the rule's identity, so the table is rebuilt (SQLite
-- cannot change a UNIQUE constraint in place).
CREATE TABLE allow_rules_new (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  tool        TEXT    NOT NULL,
  command     TEXT    NOT NULL,
  cwd         TEXT    NOT NULL,
  env         TEXT    NOT NULL,
  runner      TEXT    NOT NULL DEFAULT '',
  sandbox     TEXT    CHECK (sandbox IN ('read-only', 'workspace-write', 'full')),
  created_by  TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  UNIQUE (run_id, tool, command, cwd, env, runner, sandbox)
);
INSERT INTO allow_rules_new (id, run_id, tool, command, cwd, env, runner, sandbox, created_by, created_at)
  SELECT id, run_id, tool, command, cwd, env, runner, NULL, created_by, created_at FROM allow_rules;
DROP TABLE allow_rules;
ALTER TABLE allow_rules_new RENAME TO allow_rules;
