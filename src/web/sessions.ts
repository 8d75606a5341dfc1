import { createHash, randomBytes } from "node:crypto";
import type { PrincipalRef } from "../protocol/roles.js";

export interface WebSessionOptions {
  /** How long a one-time code may wait to be exchanged. */
  codeTtlMs?: number;
  /** How long a session lives after its last use (its last page connection closing counts as use). */
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

interface Session {
  expiresAt: number;
  sockets: Set<SessionSocket>;
  /** Who signed the page in: the principal whose credential minted the code (`spool open`). */
  principal: PrincipalRef;
}

/** Secrets are kept only as their SHA-256: the maps never hold what a browser presents. */
const digest = (secret: string) => createHash("sha256").update(secret).digest("hex");

/** 256 random bits, URL- and cookie-safe. */
const secret = () => randomBytes(32).toString("base64url");

/**
 * The web view's sign-in: a holder of the token mints a one-time code (short-lived, single use), a page
 * exchanges it for a session (a random id as strong as the token, kept server-side with an idle expiry).
 * Everything lives in memory: a restarted server has no sessions and pages sign in again.
 */
export class WebSessions {
  readonly #codes = new Map<string, { expiresAt: number; principal: PrincipalRef }>();
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

  /** A new one-time code for `principal`, whose credential the caller has proved it holds: the session it becomes acts as it. */
  mintCode(principal: PrincipalRef): { code: string; expiresAt: number } {
    this.#prune();
    while (this.#codes.size >= this.#options.maxCodes) this.#codes.delete(this.#codes.keys().next().value!);
    const code = secret();
    const expiresAt = this.#now() + this.#options.codeTtlMs;
    this.#codes.set(digest(code), { expiresAt, principal });
    return { code, expiresAt };
  }

  /** Spends a code without a session (an exchange refused for another reason): it works no more. */
  spend(code: string): boolean {
    return this.#codes.delete(digest(code));
  }

  /** Exchanges a code for a session id; null when the code is unknown, used or expired. A code works once, even when it fails. */
  redeem(code: string): { id: string; expiresAt: number } | null {
    const key = digest(code);
    const minted = this.#codes.get(key);
    this.#codes.delete(key);
    if (minted === undefined || minted.expiresAt <= this.#now()) return null;
    this.#prune();
    while (this.#sessions.size >= this.#options.maxSessions) this.#endKey(this.#sessions.keys().next().value!, "signed out: too many sessions");
    const id = secret();
    const session: Session = { expiresAt: this.#now() + this.#options.idleMs, sockets: new Set(), principal: minted.principal };
    this.#sessions.set(digest(id), session);
    return { id, expiresAt: session.expiresAt };
  }

  /** Whether `id` names a live session; using it extends its life. */
  check(id: string | null): { expiresAt: number; principal: PrincipalRef } | null {
    if (!id) return null;
    const key = digest(id);
    const session = this.#sessions.get(key);
    if (!session) return null;
    if (session.sockets.size === 0 && session.expiresAt <= this.#now()) {
      this.#sessions.delete(key);
      return null;
    }
    this.#touch(key, session);
    return { expiresAt: session.expiresAt, principal: session.principal };
  }

  /** Ties a page's connection to its session: it is closed when the session ends, and the session lives while it is open. */
  attach(id: string, socket: SessionSocket): () => void {
    const key = digest(id);
    const session = this.#sessions.get(key);
    if (!session) {
      socket.close(1008, "signed out");
      return () => {};
    }
    session.sockets.add(socket);
    return () => {
      if (!session.sockets.delete(socket)) return;
      if (this.#sessions.get(key) === session) this.#touch(key, session);
    };
  }

  /** Signs a session out: its id stops working and its page connections close. */
  end(id: string | null): boolean {
    return id !== null && this.#endKey(digest(id), "signed out");
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

  #endKey(key: string, reason: string): boolean {
    const session = this.#sessions.get(key);
    if (!session) return false;
    this.#sessions.delete(key);
    for (const socket of session.sockets) socket.close(1008, reason);
    return true;
  }

  /** Moves the session to the back of the map (the front is what eviction takes first). */
  #touch(key: string, session: Session): void {
    session.expiresAt = this.#now() + this.#options.idleMs;
    this.#sessions.delete(key);
    this.#sessions.set(key, session);
  }

  #prune(): void {
    const now = this.#now();
    for (const [key, code] of this.#codes) if (code.expiresAt <= now) this.#codes.delete(key);
    for (const [key, session] of this.#sessions) if (session.sockets.size === 0 && session.expiresAt <= now) this.#sessions.delete(key);
  }
}
