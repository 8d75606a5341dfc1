-- Principals: who a credential (other than the home's token file, the admin)
-- names, its role and its scope. Only a hash of the token's secret is kept:
-- a token is spool_<token_id>_<secret>, looked up by token_id and compared as
-- sha256(secret) in constant time (src/core/principals.ts). A revoked
-- principal's row stays (its name is on the proposals and decisions it made);
-- its name may be given again to a new principal.
CREATE TABLE principals (
  id          INTEGER PRIMARY KEY,
  name        TEXT    NOT NULL,
  role        TEXT    NOT NULL CHECK (role IN ('runner', 'viewer', 'agent', 'person', 'admin')),
  projects    TEXT,
  token_id    TEXT    NOT NULL UNIQUE,
  secret_hash TEXT    NOT NULL,
  created_by  TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER,
  revoked_at  INTEGER
);
CREATE UNIQUE INDEX principals_live_name ON principals (name) WHERE revoked_at IS NULL;
