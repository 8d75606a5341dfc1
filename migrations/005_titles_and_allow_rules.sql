-- A run's title: what lists show (editors' session lists, the CLI). Set by
-- run/create, or from the first line of the run's first prompt.
ALTER TABLE runs ADD COLUMN title TEXT;

-- "Always allow" rules, per run: a later proposal of the same tool with the
-- identical command, directory and environment is accepted by the server
-- itself, and run/resolved names the rule. `env` is the environment as JSON
-- with its keys sorted, so equal environments are equal text.
CREATE TABLE allow_rules (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  tool        TEXT    NOT NULL,
  command     TEXT    NOT NULL,
  cwd         TEXT    NOT NULL,
  env         TEXT    NOT NULL,
  -- Who asked for the rule (a client's name or a connection).
  created_by  TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  UNIQUE (run_id, tool, command, cwd, env)
);
