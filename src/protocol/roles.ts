// Plain TypeScript: every `spool` command reads these, and none of them needs zod (the schemas: role-schemas.ts).
import type { Role } from "./role-rank.js";

export { lesserRole, ROLES, type Role, roleAllows } from "./role-rank.js";

/** What each role may do, in words (SPEC.md and `spool token --help` show these). */
export const ROLE_SUMMARY: Record<Role, string> = {
  runner: "attaches as a runner, runs what is dispatched to it and writes its own producers' output; nothing else",
  viewer: "a runner's power, and reads projects, runs, entries and output",
  agent: "a viewer that also creates runs, and proposes, prompts, withdraws, sends input to, cancels and aborts in the runs it created; never accepts",
  person: "an agent that also decides (accepts), cancels, aborts and prompts in every run of its scope",
  admin:
    "everything in the projects of its scope, and manages principals, receivers and the trail: an unscoped admin of every project; a scoped one only credentials (at most admin) and receivers of its projects, and their trail",
};

/**
 * A principal's credential: `spool_<id>_<secret>`. The id (16 hex digits) names it; a server keeps only the SHA-256
 * of the secret (its verifier). The home's token file holds a credential of another shape (64 hex digits).
 */
export const PRINCIPAL_TOKEN = /^spool_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** Who a connection acts as (its schema: role-schemas.ts). */
export type { PrincipalRef } from "./role-schemas.js";

/** The principal of the home's token file (and of in-process connections): an admin of every project. */
export const HOME_PRINCIPAL_NAME = "admin";

/** The notifications a connection acting as a runner gets: what it must act on, nothing it could read the project by. */
export const RUNNER_NOTIFICATIONS: ReadonlySet<string> = new Set(["stream/cancelled"]);

export { claimWords, TRANSPORTS, type TransportKind } from "./transports.js";
