-- Core tables: projects, runs, loops, turns, entries and the chunks of streamed entries.
-- Times are milliseconds since the Unix epoch.

CREATE TABLE projects (
  id          INTEGER PRIMARY KEY,
  name        TEXT    NOT NULL UNIQUE,
  root        TEXT    NOT NULL,
  created_at  INTEGER NOT NULL
);

CREATE TABLE runs (
  id          INTEGER PRIMARY KEY,
  project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  alias       TEXT    NOT NULL,
  model       TEXT,
  mode        TEXT    NOT NULL DEFAULT 'act' CHECK (mode IN ('ask', 'act')),
  status      INTEGER NOT NULL,
  turn        INTEGER NOT NULL DEFAULT 1,
  attributes  TEXT    NOT NULL DEFAULT '{}',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  UNIQUE (project_id, alias)
);

CREATE TABLE loops (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  prompt      TEXT    NOT NULL,
  mode        TEXT    NOT NULL CHECK (mode IN ('ask', 'act')),
  status      INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  finished_at INTEGER,
  UNIQUE (run_id, seq)
);

CREATE TABLE turns (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  loop_id     INTEGER REFERENCES loops(id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  status      INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  UNIQUE (run_id, seq)
);

-- An entry's body lives either in `body` (small, written whole: log entries)
-- or, when `streamed` = 1, in `chunks`; the counters describe streamed bodies
-- so tails and slices never scan the stream.
CREATE TABLE entries (
  id                INTEGER PRIMARY KEY,
  run_id            INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  path              TEXT    NOT NULL,
  scheme            TEXT    NOT NULL,
  turn              INTEGER NOT NULL,
  status            INTEGER NOT NULL,
  attributes        TEXT    NOT NULL DEFAULT '{}',
  body              TEXT    NOT NULL DEFAULT '',
  streamed          INTEGER NOT NULL DEFAULT 0,
  producer_id       INTEGER REFERENCES entries(id) ON DELETE CASCADE,
  channel           INTEGER,
  bytes             INTEGER NOT NULL DEFAULT 0,
  newlines          INTEGER NOT NULL DEFAULT 0,
  ends_with_newline INTEGER NOT NULL DEFAULT 0,
  last_seq          INTEGER NOT NULL DEFAULT 0,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  UNIQUE (run_id, path)
);
CREATE INDEX entries_by_producer ON entries (producer_id, channel);
CREATE INDEX entries_open ON entries (status) WHERE status IN (102, 202);

CREATE TABLE chunks (
  id          INTEGER PRIMARY KEY,
  entry_id    INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  byte_offset INTEGER NOT NULL,   -- bytes of the entry before this chunk
  line_offset INTEGER NOT NULL,   -- newlines of the entry before this chunk
  newlines    INTEGER NOT NULL,
  data        BLOB    NOT NULL,
  UNIQUE (entry_id, seq)
);
CREATE INDEX chunks_by_line ON chunks (entry_id, line_offset, seq);
CREATE INDEX chunks_by_byte ON chunks (entry_id, byte_offset);
