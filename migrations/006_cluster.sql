-- Several servers over one database (with SQLite there is only ever one, and
-- these tables hold its own rows). Which servers are alive is decided by the
-- database (PostgreSQL: an advisory lock each server holds on a connection of
-- its own; SQLite: only the server that has the file open), never by a
-- heartbeat written here.

-- One row per server start; its id names the server in the tables below.
CREATE TABLE servers (
  id          INTEGER PRIMARY KEY,
  url         TEXT    NOT NULL,
  host        TEXT    NOT NULL,
  pid         INTEGER NOT NULL,
  started_at  INTEGER NOT NULL
);

-- The server whose connection owns each running producer (the live half of
-- ownership is that connection; this row tells the other servers where it is,
-- and who takes its producers over when that server dies).
CREATE TABLE producer_owners (
  producer_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
  server_id   INTEGER NOT NULL,
  since       INTEGER NOT NULL
);
CREATE INDEX producer_owners_server ON producer_owners (server_id);

-- The server driving a run's agent loop right now (at most one).
CREATE TABLE run_leases (
  run_id      INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
  server_id   INTEGER NOT NULL,
  since       INTEGER NOT NULL
);

-- Announcements one server makes to the others (PostgreSQL's NOTIFY carries
-- only the id); kept a few minutes, then pruned.
-- Which server each attached runner is connected to, so a proposal accepted
-- on one server is dispatched through the server its runner is on, and one
-- name (or the default) is not taken twice. Embedded runners are not listed:
-- each server has its own.
CREATE TABLE runner_locations (
  project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name        TEXT    NOT NULL,
  server_id   INTEGER NOT NULL,
  is_default  INTEGER NOT NULL,
  since       INTEGER NOT NULL,
  PRIMARY KEY (project_id, name)
);

CREATE TABLE cluster_events (
  id          INTEGER PRIMARY KEY,
  server_id   INTEGER NOT NULL,
  body        TEXT    NOT NULL,
  created_at  INTEGER NOT NULL
);
CREATE INDEX cluster_events_created ON cluster_events (created_at);
