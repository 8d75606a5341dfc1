import { createHash, randomBytes } from "node:crypto";
import { createRequestStateCodec, type RequestStateCodec, type ServerContext } from "@modelcontextprotocol/server";

/*
 * MCP 2026-07-28's `requestState` for an approval asked by elicitation (multi round-trip requests): an opaque
 * token the client echoes on its retry. The envelope is the v2 SDK's (createRequestStateCodec): HMAC-SHA256
 * with a key only this server holds, an expiry, and a binding to the principal it was issued to (kept as an
 * HMAC tag, so the principal's name is not in the token). What the SDK lacks stays Spool's, in the payload:
 * the proposal (run and log path), a digest of the request it answers (method, tool, arguments) and a nonce,
 * spent by the retry that uses it; the SDK's codec has no single-use record, so a state it verifies could be
 * replayed until it expires. A tampered token, another principal's, another request's, an old or a used one is
 * refused. The codec is used outside the SDK's Server: Spool calls `mint` and `verify` itself, with a context
 * that carries only the principal its `bind` reads.
 */

/** What a request state says (the SDK envelope's payload). */
export interface ApprovalState {
  run: string;
  path: string;
  /** The facts revision the approval form showed: an accept names it (`run/resolve`'s `facts`). */
  facts: number;
  /** sha256 of the request it answers (method, tool, arguments). */
  request: string;
  /** Its own id, spent by the retry that uses it. */
  nonce: string;
}

/** How long an elicited approval may wait for the retry that carries its answer. */
export const STATE_TTL_MS = 10 * 60_000;
/**
 * Spent nonces one principal may have remembered at once (each until its state has surely expired). Past it, a
 * redemption is refused, never an older nonce forgotten (which would let that state be replayed): a principal that
 * fast waits for its oldest to expire, and no other principal's approvals are touched.
 */
export const MAX_SPENT_PER_PRINCIPAL = 1000;
/** Longer states are refused unread. */
const MAX_LENGTH = 8192;

/** Why a request state is refused: said to the client, nothing runs. */
export class RequestStateError extends Error {}

/** The SDK codec's reasons (its thrown message, a fixed code) as Spool says them to the client. */
const REFUSALS: Record<string, string> = {
  malformed: "requestState is not one this server issued",
  mac: "requestState failed verification (altered, or from another server): refused",
  expired: "requestState has expired: call the tool again",
  bind: "requestState was issued to another principal: refused",
};

/** A digest of a request's salient parts: the method, the tool and its arguments. */
export function requestDigest(method: string, name: string, args: unknown): string {
  return createHash("sha256")
    .update(JSON.stringify([method, name, canonical(args)]))
    .digest("base64url");
}

/** A JSON value with its object keys sorted (the digest does not depend on their order). */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object")
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  return value;
}

/**
 * What the codec's `bind` reads: the principal, where the SDK's Server would put an authenticated caller
 * (`http.authInfo.clientId`). Only `bind` sees this context, so nothing else of a ServerContext is needed.
 */
function principalContext(principal: string): ServerContext {
  return { http: { authInfo: { token: "", clientId: principal, scopes: [] } } } as unknown as ServerContext;
}

/** Issues and checks request states with a key of this server's (made at its start: a restart voids them). */
export class RequestStates {
  readonly #codec: RequestStateCodec<ApprovalState>;
  /** Spent nonces by principal, each with when it may be forgotten (ms since the epoch). */
  readonly #spent = new Map<string, Map<string, number>>();
  /** When every principal's spent nonces were last swept (a principal that stopped redeeming leaves none behind). */
  #sweptAll = 0;

  constructor(key: Uint8Array = randomBytes(32)) {
    this.#codec = createRequestStateCodec<ApprovalState>({
      key,
      ttlSeconds: STATE_TTL_MS / 1000,
      bind: (ctx) => ctx.http?.authInfo?.clientId ?? "",
    });
  }

  async issue(state: Omit<ApprovalState, "nonce">, principal: string): Promise<string> {
    return this.#codec.mint({ ...state, nonce: randomBytes(12).toString("base64url") }, principalContext(principal));
  }

  /** The state a token carries, checked against who presents it on which request; spent by this call. */
  async redeem(token: string, expected: { principal: string; request: string }): Promise<ApprovalState> {
    if (typeof token !== "string" || token.length > MAX_LENGTH) throw new RequestStateError(REFUSALS.malformed);
    let state: ApprovalState;
    try {
      state = await this.#codec.verify(token, principalContext(expected.principal));
    } catch (error) {
      throw new RequestStateError(REFUSALS[(error as Error).message] ?? REFUSALS.malformed);
    }
    if (!state || typeof state !== "object" || typeof state.nonce !== "string" || !Number.isInteger(state.facts))
      throw new RequestStateError(REFUSALS.malformed);
    if (state.request !== expected.request) throw new RequestStateError("requestState belongs to another request (method, tool or arguments differ): refused");
    // From here on nothing awaits: of two retries with one state, the first spends it and the second is refused.
    const now = Date.now();
    if (now - this.#sweptAll > 60_000) {
      this.#sweptAll = now;
      for (const principal of [...this.#spent.keys()]) this.#sweep(principal, now);
    }
    const spent = this.#sweep(expected.principal, now);
    if (spent.has(state.nonce)) throw new RequestStateError("requestState was used already: refused");
    if (spent.size >= MAX_SPENT_PER_PRINCIPAL)
      throw new RequestStateError(
        `${MAX_SPENT_PER_PRINCIPAL} approvals of this principal were redeemed in the last ${STATE_TTL_MS / 60_000} minutes: refused until the oldest expires (nothing ran; call the tool again later)`,
      );
    // The codec does not say when the state expires; it cannot outlive a TTL from now (its expiry is in whole seconds).
    spent.set(state.nonce, now + STATE_TTL_MS + 1000);
    this.#spent.set(expected.principal, spent);
    return state;
  }

  /** The principal's spent nonces still to be remembered (those surely expired forgotten, and empty principals with them). */
  #sweep(principal: string, now: number): Map<string, number> {
    const spent = this.#spent.get(principal) ?? new Map<string, number>();
    // Insertion order is expiry order (each is now + the same TTL): the expired ones are at the front.
    for (const [nonce, forget] of spent) {
      if (forget >= now) break;
      spent.delete(nonce);
    }
    if (spent.size === 0) this.#spent.delete(principal);
    return spent;
  }

  /** How many spent nonces are remembered, in all (for tests and the server's figures). */
  get remembered(): number {
    let n = 0;
    for (const spent of this.#spent.values()) n += spent.size;
    return n;
  }
}
