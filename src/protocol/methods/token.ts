import { z } from "zod";
import { request } from "../define.js";
import { PROJECT_NAME, PROJECT_NAME_RULE } from "../project-name.js";
import { PrincipalName, RoleName } from "../role-schemas.js";

/** A principal as `token/list` shows it: never its token, which only `token/create` shows, once. */
export const PrincipalView = z.object({
  name: z.string(),
  role: RoleName,
  projects: z.array(z.string()).nullable().describe("The projects it may join; null: every project"),
  createdAt: z.number().int(),
  createdBy: z.string().describe("The principal that created it"),
  expiresAt: z.number().int().nullable().describe("When its token stops working (ms since the epoch); null: never"),
  revokedAt: z.number().int().nullable().describe("When it was revoked; null: it is not"),
});

export const tokenCreate = request({
  name: "token/create",
  description:
    "Creates a principal and its credential: a name, a role and a scope (every project, or the ones listed), with an optional expiry. The reply holds the token, shown this once: the server keeps only its hash. A name a live principal holds is CONFLICT.",
  access: "none",
  role: "admin",
  params: z.strictObject({
    name: PrincipalName,
    role: RoleName,
    projects: z.array(z.string().regex(PROJECT_NAME, PROJECT_NAME_RULE)).min(1).max(100).optional().describe("The projects it may join; absent: every project"),
    expiresAt: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        "When its token stops working (ms since the epoch, in the future); absent: never, or when the creator's own credential expires (none may outlive it: FORBIDDEN)",
      ),
  }),
  result: z.object({ token: z.string().describe("The credential (spool_<id>_<secret>); not stored, not shown again"), principal: PrincipalView }),
});

export const tokenList = request({
  name: "token/list",
  description: "The principals created with token/create (the home's token file is the `admin` principal, not listed), oldest first.",
  access: "none",
  role: "admin",
  params: z.strictObject({ revoked: z.boolean().optional().describe("Also list revoked principals (default false)") }),
  result: z.object({ principals: z.array(PrincipalView) }),
});

export const tokenRevoke = request({
  name: "token/revoke",
  description:
    "Revokes a principal and every credential minted under it (those it created, and theirs): their tokens stop working, their open connections close (on every server sharing the database), and their proposals that wait for a decision are withdrawn (rejected, resolver `revoked`), in every project. A name no live principal holds is NOT_FOUND, and nothing changes.",
  access: "none",
  role: "admin",
  params: z.strictObject({ name: PrincipalName }),
  result: z.object({
    principal: PrincipalView,
    closed: z.number().int().describe("Connections of it (and of what it minted) this server closed"),
    withdrawn: z.number().int().describe("Its proposals (and those of what it minted) that waited for a decision, withdrawn (every project)"),
    minted: z.array(z.string()).describe("The credentials minted under it, revoked with it"),
  }),
});
