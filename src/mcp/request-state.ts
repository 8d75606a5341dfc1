import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/*
 * MCP 2026-07-28's `requestState` for an approval asked by elicitation (multi round-trip requests): an opaque
 * token the client echoes on its retry. It names the principal, the proposal (run and log path), a digest of
 * the request it answers and an expiry, and is HMAC-SHA256-protected with a secret only this server holds: a
 * tampered token, another principal's, another request's or an old one is refused. Single use is held by the
 * proposal itself (a decided proposal is not decided again) and by the nonces remembered until they expire.
 */

/** What a request state says. */
export interface ApprovalState {
  /** The principal it was issued to. */
  principal: string;
  run: string;
  path: string;
  /** sha256 of the request it answers (method, tool, arguments). */
  request: string;
  /** When it lapses (ms since the epoch). */
  expires: number;
  /** Its own id, spent by the retry that uses it. */
  nonce: string;
}

/** How long an elicited approval may wait for the retry that carries its answer. */
export const STATE_TTL_MS = 10 * 60_000;
/** Spent nonces remembered at most (each until its state expires). */
const MAX_SPENT = 10_000;
const PREFIX = "spool1.";

/** Why a request state is refused: said to the client, nothing runs. */
export class RequestStateError extends Error {}

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

/** Issues and checks request states with a secret of this server's (made at its start: a restart voids them). */
export class RequestStates {
  readonly #secret: Buffer;
  readonly #spent = new Map<string, number>();

  constructor(secret: Buffer = randomBytes(32)) {
    this.#secret = secret;
  }

  issue(state: Omit<ApprovalState, "expires" | "nonce">, now = Date.now()): string {
    const full: ApprovalState = { ...state, expires: now + STATE_TTL_MS, nonce: randomBytes(12).toString("base64url") };
    const body = Buffer.from(JSON.stringify(full), "utf8").toString("base64url");
    return `${PREFIX}${body}.${this.#mac(body)}`;
  }

  /** The state a token carries, checked against who presents it on which request; spent by this call. */
  redeem(token: string, expected: { principal: string; request: string }, now = Date.now()): ApprovalState {
    const state = this.#verify(token);
    if (state.principal !== expected.principal) throw new RequestStateError("requestState was issued to another principal: refused");
    if (state.request !== expected.request) throw new RequestStateError("requestState belongs to another request (method, tool or arguments differ): refused");
    if (now > state.expires) throw new RequestStateError("requestState has expired: call the tool again");
    this.#sweep(now);
    if (this.#spent.has(state.nonce)) throw new RequestStateError("requestState was used already: refused");
    this.#spent.set(state.nonce, state.expires);
    if (this.#spent.size > MAX_SPENT) this.#spent.delete(this.#spent.keys().next().value!);
    return state;
  }

  #verify(token: string): ApprovalState {
    if (typeof token !== "string" || !token.startsWith(PREFIX) || token.length > 8192)
      throw new RequestStateError("requestState is not one this server issued");
    const [body, mac] = token.slice(PREFIX.length).split(".");
    if (!body || !mac) throw new RequestStateError("requestState is not one this server issued");
    const want = Buffer.from(this.#mac(body));
    const got = Buffer.from(mac);
    if (want.length !== got.length || !timingSafeEqual(want, got))
      throw new RequestStateError("requestState failed verification (altered, or from another server): refused");
    const value = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as ApprovalState;
    return value;
  }

  #mac(body: string): string {
    return createHmac("sha256", this.#secret).update(body).digest("base64url");
  }

  #sweep(now: number): void {
    for (const [nonce, expires] of this.#spent) if (expires < now) this.#spent.delete(nonce);
  }
}
