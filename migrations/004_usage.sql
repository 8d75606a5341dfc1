-- Token usage the model server reported, one row per model call that
-- reported it (a call is one turn of a run). run/get sums them per turn and
-- for the run.
CREATE TABLE model_usage (
  id                 INTEGER PRIMARY KEY,
  run_id             INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  loop_id            INTEGER REFERENCES loops(id) ON DELETE CASCADE,
  turn               INTEGER NOT NULL,
  -- The model alias the call used.
  model              TEXT    NOT NULL,
  prompt_tokens      INTEGER NOT NULL,
  completion_tokens  INTEGER NOT NULL,
  total_tokens       INTEGER NOT NULL,
  created_at         INTEGER NOT NULL
);
CREATE INDEX model_usage_by_run ON model_usage (run_id, turn);
