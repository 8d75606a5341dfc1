-- An "always allow" rule also matches on the runner the proposal named: the
-- runner is shown before the decision, so a rule set for commands proposed
-- for one runner does not accept them proposed for another. '' is a proposal
-- that named no runner (the decision picks it), which every rule stored
-- before this migration was. SQLite cannot change a UNIQUE constraint in
-- place, so the table is rebuilt.
CREATE TABLE allow_rules_new (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  tool        TEXT    NOT NULL,
  command     TEXT    NOT NULL,
  cwd         TEXT    NOT NULL,
  env         TEXT    NOT NULL,
  runner      TEXT    NOT NULL DEFAULT '',
  created_by  TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  UNIQUE (run_id, tool, command, cwd, env, runner)
);
INSERT INTO allow_rules_new (id, run_id, tool, command, cwd, env, runner, created_by, created_at)
  SELECT id, run_id, tool, command, cwd, env, '', created_by, created_at FROM allow_rules;
DROP TABLE allow_rules;
ALTER TABLE allow_rules_new RENAME TO allow_rules;
