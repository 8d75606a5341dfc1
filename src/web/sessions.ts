import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { PrincipalRef } from "../protocol/roles.js";

export interface WebSessionOptions {
  /** How long a one-time code may wait to be exchanged. */
  codeTtlMs?: number;
  /** How long a session lives after its last use (its last page connection closing counts as use), never past its credential. */
  idleMs?: number;
  /** Codes waiting at once; minting another drops the oldest. */
  maxCodes?: number;
  /** Sessions at once; signing in another ends the one used longest ago. */
  maxSessions?: number;
  now?: () => number;
}

export const WEB_SESSION_DEFAULTS = {
  codeTtlMs: 60_000,
  idleMs: 24 * 60 * 60 * 1000,
  maxCodes: 16,
  maxSessions: 64,
} as const;

/** Something a session keeps open: a page's WebSocket, closed when the session ends. */
export interface SessionSocket {
  close(code: number, reason: string): void;
}

/** Whose credential a code (and the session it becomes) stands for: its principal, and when the credential expires (null: never). */
export interface SessionGrant {
  principal: PrincipalRef;
  credentialExpiresAt: number | null;
}

interface Session extends SessionGrant {
  /** The end of its idle life: never past credentialExpiresAt. */
  expiresAt: number;
  /** The SHA-256 of the page's key: the half of the session the browser never sends by itself. */
  keyDigest: Buffer;
  sockets: Set<SessionSocket>;
  /** Ends the session when its credential expires (cleared when it ends otherwise). */
  timer: ReturnType<typeof setTimeout> | null;
}

/** What a page shows a live session by: until when, and whose it is. */
export interface LiveSession {
  expiresAt: number;
  credentialExpiresAt: number | null;
  principal: PrincipalRef;
}

/** Secrets are kept only as their SHA-256: the maps never hold what a browser presents. */
const digest = (secret: string) => createHash("sha256").update(secret).digest();
const keyOf = (secret: string) => digest(secret).toString("hex");

/** 256 random bits, URL- and cookie-safe. */
const secret = () => randomBytes(32).toString("base64url");

/** A session's life is its credential's: setTimeout's limit (about 24.8 days) is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The web view's sign-in: a holder of a credential mints a one-time code (short-lived, single use), a page
 * exchanges it for a session of two secrets — an id the browser keeps as an HttpOnly cookie, and a key the page
 * keeps in its origin's storage and presents itself. A cookie reaches every port of its host; the key never
 * leaves the page's origin (scheme, host and port), so the cookie alone opens nothing (SPEC §2).
 * A session acts as the credential's principal and ends, at the latest, when the credential expires or is
 * revoked. Everything lives in memory: a restarted server has no sessions and pages sign in again.
 */
export class WebSessions {
  readonly #codes = new Map<string, SessionGrant & { expiresAt: number }>();
  readonly #sessions = new Map<string, Session>();
  readonly #options: Required<Omit<WebSessionOptions, "now">>;
  readonly #now: () => number;

  constructor(options: WebSessionOptions = {}) {
    this.#options = {
      codeTtlMs: options.codeTtlMs ?? WEB_SESSION_DEFAULTS.codeTtlMs,
      idleMs: options.idleMs ?? WEB_SESSION_DEFAULTS.idleMs,
      maxCodes: options.maxCodes ?? WEB_SESSION_DEFAULTS.maxCodes,
      maxSessions: options.maxSessions ?? WEB_SESSION_DEFAULTS.maxSessions,
    };
    this.#now = options.now ?? Date.now;
  }

  get codeTtlMs(): number {
    return this.#options.codeTtlMs;
  }

  get idleMs(): number {
    return this.#options.idleMs;
  }

  /**
   * A new one-time code for the credential the caller has proved it holds: the session it becomes acts as its
   * principal, until the credential expires at the latest. The code itself lives no longer than the credential either.
   */
  mintCode(grant: SessionGrant): { code: string; expiresAt: number } {
    this.#prune();
    while (this.#codes.size >= this.#options.maxCodes) this.#codes.delete(this.#codes.keys().next().value!);
    const code = secret();
    const expiresAt = capped(this.#now() + this.#options.codeTtlMs, grant.credentialExpiresAt);
    this.#codes.set(keyOf(code), { expiresAt, principal: grant.principal, credentialExpiresAt: grant.credentialExpiresAt });
    return { code, expiresAt };
  }

  /** Spends a code without a session (an exchange refused for another reason): it works no more. */
  spend(code: string): boolean {
    return this.#codes.delete(keyOf(code));
  }

  /**
   * Exchanges a code for a session: `id` for the cookie, `key` for the page to keep and present. Null when the code
   * is unknown, used or expired. A code works once, even when it fails.
   */
  redeem(code: string): { id: string; key: string; expiresAt: number } | null {
    const found = keyOf(code);
    const minted = this.#codes.get(found);
    this.#codes.delete(found);
    const now = this.#now();
    if (minted === undefined || minted.expiresAt <= now) return null;
    this.#prune();
    while (this.#sessions.size >= this.#options.maxSessions) this.#endKey(this.#sessions.keys().next().value!, "signed out: too many sessions");
    const id = secret();
    const key = secret();
    const session: Session = {
      principal: minted.principal,
      credentialExpiresAt: minted.credentialExpiresAt,
      expiresAt: capped(now + this.#options.idleMs, minted.credentialExpiresAt),
      keyDigest: digest(key),
      sockets: new Set(),
      timer: null,
    };
    const name = keyOf(id);
    this.#sessions.set(name, session);
    this.#endAtExpiry(name, session);
    return { id, key, expiresAt: session.expiresAt };
  }

  /** The live session that `id` (the cookie) and `key` (the page's) name together; using it extends its idle life, never past its credential. */
  check(id: string | null, key: string | null): LiveSession | null {
    if (!id || !key) return null;
    const name = keyOf(id);
    const session = this.#sessions.get(name);
    if (!session) return null;
    if (this.#over(session)) {
      this.#endKey(name, "signed out: session expired");
      return null;
    }
    // Both halves: a cookie another server on the host received is nothing without the page's key.
    if (!timingSafeEqual(session.keyDigest, digest(key))) return null;
    this.#touch(name, session);
    return { expiresAt: session.expiresAt, credentialExpiresAt: session.credentialExpiresAt, principal: session.principal };
  }

  /** Ties a page's connection to its session: it is closed when the session ends, and the session lives while it is open (never past its credential). */
  attach(id: string, socket: SessionSocket): () => void {
    const name = keyOf(id);
    const session = this.#sessions.get(name);
    if (!session) {
      socket.close(1008, "signed out");
      return () => {};
    }
    session.sockets.add(socket);
    return () => {
      if (!session.sockets.delete(socket)) return;
      if (this.#sessions.get(name) === session) this.#touch(name, session);
    };
  }

  /** Signs a session out: its id stops working and its page connections close. */
  end(id: string | null): boolean {
    return id !== null && this.#endKey(keyOf(id), "signed out");
  }

  /** Signs out every session of a principal (it was revoked): their page connections close. */
  endPrincipal(name: string): number {
    let ended = 0;
    for (const [key, session] of this.#sessions) if (session.principal.name === name && this.#endKey(key, "signed out: credential revoked")) ended++;
    for (const [key, code] of this.#codes) if (code.principal.name === name) this.#codes.delete(key);
    return ended;
  }

  get size(): { codes: number; sessions: number } {
    this.#prune();
    return { codes: this.#codes.size, sessions: this.#sessions.size };
  }

  /** Ends every session (the server stops): their timers go with them. */
  clear(): void {
    for (const key of [...this.#sessions.keys()]) this.#endKey(key, "server shutting down");
    this.#codes.clear();
  }

  #endKey(key: string, reason: string): boolean {
    const session = this.#sessions.get(key);
    if (!session) return false;
    this.#sessions.delete(key);
    if (session.timer) clearTimeout(session.timer);
    for (const socket of session.sockets) socket.close(1008, reason);
    return true;
  }

  /** Past its credential's expiry, or idle past its own end with no page connection open. */
  #over(session: Session): boolean {
    const now = this.#now();
    if (session.credentialExpiresAt !== null && session.credentialExpiresAt <= now) return true;
    return session.sockets.size === 0 && session.expiresAt <= now;
  }

  /** A session whose credential expires ends then, closing its page connections, whether or not anyone asks. */
  #endAtExpiry(name: string, session: Session): void {
    if (session.credentialExpiresAt === null) return;
    const wait = session.credentialExpiresAt - this.#now();
    session.timer = setTimeout(
      () => {
        if (this.#sessions.get(name) !== session) return;
        if (session.credentialExpiresAt! <= this.#now()) this.#endKey(name, "signed out: credential expired");
        else this.#endAtExpiry(name, session);
      },
      Math.min(Math.max(0, wait), MAX_TIMER_MS),
    );
    session.timer.unref?.();
  }

  /** Moves the session to the back of the map (the front is what eviction takes first); its idle end moves on, never past its credential. */
  #touch(key: string, session: Session): void {
    session.expiresAt = capped(this.#now() + this.#options.idleMs, session.credentialExpiresAt);
    this.#sessions.delete(key);
    this.#sessions.set(key, session);
  }

  #prune(): void {
    const now = this.#now();
    for (const [key, code] of this.#codes) if (code.expiresAt <= now) this.#codes.delete(key);
    for (const [key, session] of this.#sessions) if (this.#over(session)) this.#endKey(key, "signed out: session expired");
  }
}

const capped = (at: number, limit: number | null) => (limit === null ? at : Math.min(at, limit));
