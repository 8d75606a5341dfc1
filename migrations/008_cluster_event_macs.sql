-- Rows of cluster_events are authenticated: servers sharing the database act
-- on them (an accept runs a command), so a row anyone with access to the
-- database could write must prove it comes from a server holding the token.
-- `seq` numbers one server's rows from 1 (a row copied or notified again is
-- not acted on twice); `mac` is the HMAC-SHA256, under a key derived from the
-- token, of the server, seq, time and body. Rows are announcements kept a few
-- minutes: those of before carry no MAC and are dropped with the table.
DROP TABLE cluster_events;
CREATE TABLE cluster_events (
  id          INTEGER PRIMARY KEY,
  server_id   INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  body        TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  mac         TEXT    NOT NULL
);
CREATE INDEX cluster_events_created ON cluster_events (created_at);
