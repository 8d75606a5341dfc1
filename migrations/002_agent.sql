-- The agent loop's conversation: one row per chat message, in order per run.
-- A run waiting on a proposal is these rows plus the proposal's log entry
-- (its attributes name the tool call), so any connection, or a restarted
-- server, can continue it.
CREATE TABLE messages (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  loop_id     INTEGER REFERENCES loops(id) ON DELETE CASCADE,
  turn        INTEGER NOT NULL,
  role        TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
  -- The message as the chat-completions API takes it (content, tool_calls, tool_call_id).
  body        TEXT    NOT NULL,
  created_at  INTEGER NOT NULL
);
CREATE INDEX messages_by_run ON messages (run_id, id);
CREATE INDEX loops_open ON loops (run_id, status) WHERE status IN (100, 102, 202);
