import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { z } from "zod";
import type { PrincipalView } from "../../protocol/methods/token.js";
import { HOME_PRINCIPAL_NAME, PRINCIPAL_TOKEN, type PrincipalRef, type Role } from "../../protocol/roles.js";
import type { ConnectionHandle } from "../../rpc/connection-context.js";
import { conflict, notFound, SpoolError } from "../../rpc/errors.js";
import { UniqueViolation } from "../../store/repositories.js";
import type { PrincipalRow, RunRow } from "../../store/schema.js";
import type { ClusterLink } from "../cluster.js";
import type { CoreDeps, ResolverOut } from "../deps.js";
import { describeCaller, LATE_REVOKED_RESOLVER, REVOCATION, revokedReason, revokedResolver } from "../resolvers.js";
import { covers, requireCovered, requireRoleAtMost } from "../scope.js";
import { shareOf } from "../share-key.js";

/** A token is `spool_<id>_<secret>`: the id (hex) finds the row, the secret is compared as its SHA-256. */
const TOKEN = PRINCIPAL_TOKEN;

const sha256 = (secret: string) => createHash("sha256").update(secret).digest();

/** A principal's credential as a client presented it, checked: who it names, until when. */
export interface Authenticated {
  principal: PrincipalRef;
  expiresAt: number | null;
  /** Which credential: the token's id (the home's token file: `home:<id>`), what a paired device is bound to. */
  credential: string;
  /** Whose bounds it counts against (shareOf): the principal that minted it, up to one the home minted; the home's own: HOME_SHARE. */
  share: string;
}

function refOf(row: PrincipalRow): PrincipalRef {
  return { name: row.name, role: row.role, projects: row.projects === null ? null : (JSON.parse(row.projects) as string[]) };
}

export function principalView(row: PrincipalRow): z.input<typeof PrincipalView> {
  return { ...refOf(row), createdAt: row.created_at, createdBy: row.created_by, expiresAt: row.expires_at, revokedAt: row.revoked_at };
}

/**
 * Principals: credentials other than the home's token file, each with a name, a role and a scope. The token is
 * shown once, at creation; the store keeps its id and the hash of its secret. A revocation closes the principal's
 * connections on every server sharing the database (`onRevoked` listeners, the cluster bus), and withdraws its
 * proposals that wait for a decision (the lifecycle's reject: the revoking server does it once, for every project).
 */
export class Principals {
  readonly #listeners: ((name: string) => number)[] = [];

  constructor(
    private readonly deps: CoreDeps,
    cluster: ClusterLink,
    /**
     * The lifecycle's side: `withdraw` rejects a principal's waiting proposals (the transition table decides whether
     * each still may be) after noting the name; `noteRevoked` notes it alone (a proposal of it stored later withdraws
     * itself).
     */
    private readonly lifecycle: {
      withdraw(principal: string, options: { by: string; resolver: ResolverOut; reason: string }): Promise<unknown[]>;
      noteRevoked(principal: string): void;
    },
  ) {
    cluster.onRevoked((name, withdrawn) => {
      if (withdrawn) {
        // The revoking server withdrew what it read; what this server's handlers stored before it noted the name, it withdraws.
        void this.lifecycle.withdraw(name, { by: REVOCATION, resolver: LATE_REVOKED_RESOLVER, reason: revokedReason(name) }).catch((error: unknown) => {
          this.deps.log.error(`revocation: could not withdraw the proposals of "${name}" stored here`, { error });
        });
        return;
      }
      this.lifecycle.noteRevoked(name);
      this.#tell(name);
    });
  }

  /** Who a presented token names; null when it is not one, unknown, revoked or expired. */
  async authenticate(presented: string | null, now = Date.now()): Promise<Authenticated | null> {
    const match = presented === null ? null : TOKEN.exec(presented);
    if (!match) return null;
    const row = await this.deps.repos.principals.findPrincipalByTokenId(match[1]!);
    // The hash is compared even for an unknown id, so the time taken says nothing of which ids exist.
    const expected = row ? Buffer.from(row.secret_hash, "hex") : Buffer.alloc(32);
    const same = timingSafeEqual(expected, sha256(match[2]!));
    if (!row || !same || row.revoked_at !== null || (row.expires_at !== null && row.expires_at <= now)) return null;
    return { principal: refOf(row), expiresAt: row.expires_at, credential: row.token_id, share: shareOf(row) };
  }

  /**
   * Who a client's proof names (SPEC §2c, the Unix socket): the live principal of `tokenId` when `proves` holds for its
   * verifier (the hash its store keeps); null otherwise. An unknown id is checked against a verifier of zeros, as
   * authenticate does, so the time taken says nothing of which ids exist.
   */
  async byProof(tokenId: string, proves: (verifier: Buffer) => boolean, now = Date.now()): Promise<Authenticated | null> {
    const row = await this.deps.repos.principals.findPrincipalByTokenId(tokenId);
    const same = proves(row ? Buffer.from(row.secret_hash, "hex") : Buffer.alloc(32));
    if (!row || !same || row.revoked_at !== null || (row.expires_at !== null && row.expires_at <= now)) return null;
    return { principal: refOf(row), expiresAt: row.expires_at, credential: row.token_id, share: shareOf(row) };
  }

  /**
   * The verifier of a live principal's credential named by its id (the SHA-256 of its secret, what the store keeps):
   * what the server proves it holds to a TCP client before the client sends the credential (src/client/server-proof.ts).
   */
  async verifier(tokenId: string, now = Date.now()): Promise<Buffer | null> {
    const row = await this.deps.repos.principals.findPrincipalByTokenId(tokenId);
    if (!row || row.revoked_at !== null || (row.expires_at !== null && row.expires_at <= now)) return null;
    return Buffer.from(row.secret_hash, "hex");
  }

  /**
   * Creates a principal and its token (returned once, never stored): within `by`'s scope, at most its role. It counts
   * against `by`'s bounds (its share), unless the home made it (then it starts a share of its own); a share holds at
   * most limits.maxCredentialsPerPrincipal live credentials.
   */
  async create(
    by: PrincipalRef,
    input: { name: string; role: Role; projects?: string[] | undefined; expiresAt?: number | undefined },
  ): Promise<{ token: string; row: PrincipalRow }> {
    requireRoleAtMost(by, "token/create", input.role);
    requireCovered(by, "token/create", "a credential", input.projects ?? null);
    if (input.name === HOME_PRINCIPAL_NAME)
      throw conflict(`"${HOME_PRINCIPAL_NAME}" is the home's token file's principal; choose another name`, { name: input.name });
    const now = Date.now();
    if (input.expiresAt !== undefined && input.expiresAt <= now) {
      throw new SpoolError("INVALID_PARAMS", "expiresAt is in the past: give a time to come", { issues: [{ path: "expiresAt", message: "in the past" }] });
    }
    const id = randomBytes(8).toString("hex");
    const minter = by.name === HOME_PRINCIPAL_NAME ? undefined : await this.deps.repos.principals.findLivePrincipal(by.name);
    // A connection whose credential was revoked a moment ago (its close on its way) mints nothing: what it minted now
    // would have no minter to expire or be revoked with.
    if (by.name !== HOME_PRINCIPAL_NAME && !minter)
      throw new SpoolError("FORBIDDEN", `"${by.name}" is no longer a live credential: it may create none`, { principal: by.name });
    // A credential gives its power for its lifetime only: one it mints lives no longer (and goes with it: revoke).
    const until = minter?.expires_at ?? null;
    if (until !== null && input.expiresAt !== undefined && input.expiresAt > until) {
      throw new SpoolError(
        "FORBIDDEN",
        `"${by.name}" expires at ${new Date(until).toISOString()}: a credential it creates may not outlive it (expiresAt ${new Date(input.expiresAt).toISOString()})`,
        { expiresAt: until },
      );
    }
    const expiresAt = input.expiresAt ?? until;
    const share = await this.#shareFor(by, id, minter);
    const secret = randomBytes(32).toString("base64url");
    try {
      const row = await this.deps.repos.principals.insertPrincipal({
        share,
        name: input.name,
        role: input.role,
        projects: input.projects ? JSON.stringify([...new Set(input.projects)]) : null,
        token_id: id,
        secret_hash: sha256(secret).toString("hex"),
        created_by: by.name,
        created_at: now,
        expires_at: expiresAt,
        revoked_at: null,
      });
      return { token: `spool_${id}_${secret}`, row };
    } catch (error) {
      if (error instanceof UniqueViolation)
        throw conflict(`A principal named "${input.name}" exists; revoke it first or choose another name`, { name: input.name });
      throw error;
    }
  }

  /** The share a credential `by` mints counts against (refused past its bound); the home's start their own (`id`). */
  async #shareFor(by: PrincipalRef, id: string, minter: PrincipalRow | undefined): Promise<string> {
    if (by.name === HOME_PRINCIPAL_NAME || !minter) return id;
    const share = shareOf(minter);
    const bound = this.deps.config.limits.maxCredentialsPerPrincipal;
    const live = await this.deps.repos.principals.countLiveInShare(share);
    if (live >= bound)
      throw new SpoolError(
        "LIMIT_EXCEEDED",
        `"${by.name}" and the credentials minted under it hold ${live} live credentials, the most allowed (limits.maxCredentialsPerPrincipal: ${bound}): revoke some first (spool token list, spool token revoke)`,
        { limit: "maxCredentialsPerPrincipal", bound, principal: by.name },
      );
    return share;
  }

  /** The principals `by` covers: for a scoped admin, those whose every project is one of its own. */
  async list(by: PrincipalRef, options: { revoked: boolean }): Promise<PrincipalRow[]> {
    const rows = await this.deps.repos.principals.listPrincipals(options);
    return rows.filter((row) => covers(by, refOf(row).projects));
  }

  /**
   * Revokes the live principal of that name `by`'s principal covers: its token stops working and its connections
   * close, here and on the other servers; then its proposals that wait for a decision are withdrawn, in every project
   * (rejected, decided by `by` with the resolver `revoked`), so nobody accepts a command whose proposer no longer
   * exists. One it does not cover is NOT_FOUND, as a name nobody holds (its scope is not told), and nothing changes.
   */
  async revoke(by: ConnectionHandle, name: string): Promise<{ row: PrincipalRow; closed: number; withdrawn: number; minted: string[] }> {
    const live = await this.deps.repos.principals.findLivePrincipal(name);
    if (!live || !covers(by.principal, refOf(live).projects)) throw notFound(`Principal "${name}"`, { name });
    const now = Date.now();
    const row = await this.deps.repos.principals.revokePrincipal(name, now);
    if (!row) throw notFound(`Principal "${name}"`, { name });
    // What it minted, and what those minted, go with it: a credential's power lasts as long as its minter's.
    const revoked = [row];
    let closed = this.#tell(name);
    // Listed again until a pass finds nothing: a credential minted by a connection that checked its minter just before
    // the revocation is found by the next pass (every later token/create of a revoked one is refused).
    for (let found = true; found; ) {
      found = false;
      for (const minter of [...revoked]) {
        for (const child of await this.deps.repos.principals.listLiveMintedBy(minter.name, minter.id)) {
          const gone = await this.deps.repos.principals.revokePrincipal(child.name, now);
          if (!gone) continue;
          revoked.push(gone);
          closed += this.#tell(gone.name);
          found = true;
        }
      }
    }
    let withdrawn = 0;
    for (const { name: each } of revoked) {
      if (this.deps.bus.shared) this.deps.bus.publish({ t: "revoked", name: each });
      // After the close: a connection of it can no longer propose while its proposals are read.
      const gone = await this.lifecycle.withdraw(each, { by: describeCaller(by), resolver: revokedResolver(by), reason: revokedReason(each) });
      withdrawn += gone.length;
      if (this.deps.bus.shared) this.deps.bus.publish({ t: "revoked", name: each, withdrawn: true });
    }
    return { row, closed, withdrawn, minted: revoked.slice(1).map((r) => r.name) };
  }

  /**
   * For a caller below `person` on a method marked `ownRuns`: the run it names must be one its principal created
   * (a run it cannot see is left to the handler's NOT_FOUND). Else FORBIDDEN, naming the role that may.
   */
  async requireOwnRun(method: string, params: unknown, connection: ConnectionHandle): Promise<void> {
    const alias = (params as { run?: unknown }).run;
    if (typeof alias !== "string" || !connection.project) return;
    const run = await this.deps.repos.runs.findRun(connection.project.id, alias);
    if (!run || runCreator(run) === connection.principal.name) return;
    throw new SpoolError(
      "FORBIDDEN",
      `${method} on run "${alias}" needs the person role: as ${connection.principal.role}, "${connection.principal.name}" acts only in the runs it created`,
      { role: "person", held: connection.principal.role, method, run: alias },
    );
  }

  /** Called with a principal's name when it is revoked (on this server or another): closes its connections, says how many. */
  onRevoked(listener: (name: string) => number): void {
    this.#listeners.push(listener);
  }

  #tell(name: string): number {
    let closed = 0;
    for (const listener of this.#listeners) closed += listener(name);
    return closed;
  }
}

/** The principal that created a run (recorded in its attributes by run/create), or null. */
export function runCreator(run: RunRow): string | null {
  try {
    const createdBy = (JSON.parse(run.attributes) as { createdBy?: unknown }).createdBy;
    return typeof createdBy === "string" ? createdBy : null;
  } catch {
    return null;
  }
}

/** Whether a connection acting as `principal` may join the project of that name. */
export function inScope(principal: PrincipalRef, project: string): boolean {
  return principal.projects === null || principal.projects.includes(project);
}
