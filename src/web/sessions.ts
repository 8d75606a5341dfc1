import { createHash, createHmac, randomBytes } from "node:crypto";
import type { PrincipalRef } from "../protocol/roles.js";

export interface WebSessionOptions {
  /** How long a one-time code may wait to be exchanged. */
  codeTtlMs?: number;
  /** Codes one principal may have waiting; minting another spends that principal's oldest. */
  maxCodesPerPrincipal?: number;
  /** Codes waiting, all principals together; past it minting is refused (SignInRefused), nobody's code is dropped. */
  maxCodes?: number;
  /** Codes the home (its grants' share HOME_SHARE) may mint past maxCodes. */
  homeReserve?: number;
  /** How often the devices whose page is open here are marked used (their idle end moves on). */
  touchEveryMs?: number;
  /** What this server's codes start with (default: random, made when the server starts): another server's code is told apart by it. */
  serverTag?: string;
  /**
   * The page's address (`http://host:port`) of the living server sharing this one's database whose codes bear `tag`
   * (codeTagFor), or null: none does. What a page names as the server that made a code it cannot take.
   */
  makerOf?: (tag: string) => Promise<string | null>;
  now?: () => number;
}

export const WEB_SESSION_DEFAULTS = {
  codeTtlMs: 60_000,
  maxCodesPerPrincipal: 8,
  maxCodes: 256,
  homeReserve: 32,
  touchEveryMs: 60 * 60 * 1000,
} as const;

/** The share of the home's token file's grants (core/share-key.ts HOME_SHARE). */
const HOME_SHARE = "home";

/** Something a device keeps open: a page's WebSocket, closed when the device is signed out. */
export interface SessionSocket {
  close(code: number, reason: string): void;
}

/** Whose credential a code (and the device it pairs) stands for: its principal, which credential, and when it expires (null: never). */
export interface SessionGrant {
  principal: PrincipalRef;
  /** The credential's id: a principal's token id, or `home:<id>` for the home's token file. */
  credential: string;
  credentialExpiresAt: number | null;
  /** Whose bounds its codes count against (the principal that minted the credential, up to the home's); its name when not given. */
  share?: string;
}

/** A paired device that is signed in: what its page acts as, and until when. */
export interface LiveSession {
  /** The device's public id. */
  id: string;
  name: string;
  principal: PrincipalRef;
  expiresAt: number;
  credentialExpiresAt: number | null;
  /** Whose bounds its connections count against (its credential's share). */
  share: string;
}

/** Where paired devices are kept (src/core/credentials/devices.ts: the store, shared by every server of the database). */
export interface DeviceRegistry {
  pair(
    grant: SessionGrant,
    options: { name: string | null; userAgent: string | null; address: string | null },
  ): Promise<{ cookie: string; key: string; device: LiveSession }>;
  check(cookie: string | null, key: string | null, address: string | null): Promise<LiveSession | null>;
  /** Why the device they name is signed out (`unpaired`, `expired`); null when they name none. */
  ended(cookie: string | null, key: string | null): Promise<"unpaired" | "expired" | null>;
  unpair(cookie: string | null, key: string | null): Promise<LiveSession | null>;
  touch(deviceId: string): Promise<void>;
}

/** A sign-in refused by a bound (codes or devices, server-wide): nothing of anyone else's was ended for it. */
export class SignInRefused extends Error {
  constructor(
    message: string,
    readonly limit: string,
  ) {
    super(message);
    this.name = "SignInRefused";
  }
}

interface Code extends SessionGrant {
  expiresAt: number;
  /** The device's name the code's maker gave (`spool open --name`), or null: the browser's. */
  name: string | null;
}

interface Attached {
  principal: string;
  sockets: Set<SessionSocket>;
  /** Signs the device out when its credential expires (cleared when it ends otherwise). */
  timer: ReturnType<typeof setTimeout> | null;
}

const shareOf = (grant: SessionGrant) => grant.share ?? grant.principal.name;

/** Codes are kept only as their SHA-256: the map never holds what a browser presents. */
const keyOf = (secret: string) => createHash("sha256").update(secret).digest("hex");

/** A code as servers make them: the maker's mark, a dot, the secret. */
const CODE = /^([A-Za-z0-9_-]{8})\.[A-Za-z0-9_-]{43}$/;

/**
 * The mark on the codes of the server that started as `serverId` (its row in the cluster tables, new at every start) with
 * the home's token: the servers sharing a database share the token, so each can tell which living one made a code; a
 * server of another database (another token) makes marks none of them makes, but for a 2^-48 chance.
 */
export function codeTagFor(token: string, serverId: number): string {
  return createHmac("sha256", token).update(`spool sign-in code mark ${serverId}`).digest().subarray(0, 6).toString("base64url");
}

/** A device's life is its credential's: setTimeout's limit (about 24.8 days) is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The web view's sign-in: a holder of a credential mints a one-time code (short-lived, single use, known to this
 * server only), a page exchanges it for a paired device (DeviceRegistry) of two secrets — a cookie the browser keeps
 * HttpOnly, and a key the page keeps in its origin's storage and presents itself. A cookie reaches every port of its
 * host; the key never leaves the page's origin (scheme, host and port), so the cookie alone opens nothing (SPEC §2).
 * Codes are bounded per principal (one's excess spends its own oldest) and server-wide (refused, never evicted).
 * The pages open here are tracked per device, and closed when it is signed out.
 */
export class WebSessions {
  readonly #codes = new Map<string, Code>();
  readonly #attached = new Map<string, Attached>();
  readonly #options: Required<Omit<WebSessionOptions, "now" | "serverTag" | "makerOf">>;
  readonly #makerOf: (tag: string) => Promise<string | null>;
  /** This server's mark on its codes (`TAG.SECRET`): a code marked otherwise was made by another server. */
  readonly serverTag: string;
  readonly #now: () => number;
  readonly #touchTimer: ReturnType<typeof setInterval>;

  constructor(
    readonly devices: DeviceRegistry,
    options: WebSessionOptions = {},
  ) {
    this.#options = {
      codeTtlMs: options.codeTtlMs ?? WEB_SESSION_DEFAULTS.codeTtlMs,
      maxCodesPerPrincipal: options.maxCodesPerPrincipal ?? WEB_SESSION_DEFAULTS.maxCodesPerPrincipal,
      maxCodes: options.maxCodes ?? WEB_SESSION_DEFAULTS.maxCodes,
      homeReserve: options.homeReserve ?? WEB_SESSION_DEFAULTS.homeReserve,
      touchEveryMs: options.touchEveryMs ?? WEB_SESSION_DEFAULTS.touchEveryMs,
    };
    this.#now = options.now ?? Date.now;
    this.serverTag = options.serverTag ?? randomBytes(6).toString("base64url");
    this.#makerOf = options.makerOf ?? (async () => null);
    // An open page is in use: its device's idle end moves on while it stays open.
    this.#touchTimer = setInterval(() => {
      for (const id of this.#attached.keys()) void this.devices.touch(id).catch(() => undefined);
    }, this.#options.touchEveryMs);
    this.#touchTimer.unref?.();
  }

  get codeTtlMs(): number {
    return this.#options.codeTtlMs;
  }

  /**
   * A new one-time code for the credential the caller has proved it holds: the device it pairs acts as its
   * principal, until the credential expires at the latest. The code itself lives no longer than the credential either.
   * Past the bound of its principal (with the credentials minted under it) the share's own oldest code is spent; past
   * the server's, SignInRefused (the home keeps homeReserve past it).
   */
  mintCode(grant: SessionGrant, name: string | null = null): { code: string; expiresAt: number } {
    this.#prune();
    const share = shareOf(grant);
    const mine = [...this.#codes].filter(([, code]) => shareOf(code) === share);
    for (const [key] of mine.slice(0, Math.max(0, mine.length - this.#options.maxCodesPerPrincipal + 1))) this.#codes.delete(key);
    if (this.#codes.size >= this.#options.maxCodes + (share === HOME_SHARE ? this.#options.homeReserve : 0))
      throw new SignInRefused(`This server has ${this.#options.maxCodes} sign-in codes waiting (limits.maxCodes): try again within a minute`, "maxCodes");
    const code = `${this.serverTag}.${randomBytes(32).toString("base64url")}`;
    const expiresAt = capped(this.#now() + this.#options.codeTtlMs, grant.credentialExpiresAt);
    this.#codes.set(keyOf(code), { ...grant, expiresAt, name });
    return { code, expiresAt };
  }

  /** Spends a code without pairing (an exchange refused for another reason): it works no more. */
  spend(code: string): boolean {
    return this.#codes.delete(keyOf(code));
  }

  /**
   * Whether a code this server does not hold was made by another server (it bears another server's mark, or this
   * server's before a restart: a server's mark is new each time it starts): such a code works only where it was made.
   */
  madeElsewhere(code: string): boolean {
    const tag = CODE.exec(code)?.[1];
    return tag !== undefined && tag !== this.serverTag && !this.#codes.has(keyOf(code));
  }

  /**
   * The page's address of the server sharing this one's database that made a code this server does not hold (makerOf);
   * null when none living made it: a server of another database, this one before a restart, or a mark made up. Never
   * the name a link gives: that comes from whoever wrote the link.
   */
  async madeBy(code: string): Promise<string | null> {
    const tag = CODE.exec(code)?.[1];
    if (tag === undefined || !this.madeElsewhere(code)) return null;
    return await this.#makerOf(tag);
  }

  /** Whether a code is one this server minted and still waits (the page asks before it trades its session for it). */
  peek(code: string): (SessionGrant & { expiresAt: number }) | null {
    const found = this.#codes.get(keyOf(code));
    return found && found.expiresAt > this.#now() ? found : null;
  }

  /**
   * Exchanges a code for a paired device: `cookie` for the cookie, `key` for the page to keep and present. Null when
   * the code is unknown, used or expired. A code works once, even when it fails.
   */
  async redeem(code: string, from: { userAgent: string | null; address: string | null }): Promise<{ cookie: string; key: string; device: LiveSession } | null> {
    const found = keyOf(code);
    const minted = this.#codes.get(found);
    this.#codes.delete(found);
    if (minted === undefined || minted.expiresAt <= this.#now()) return null;
    const { principal, credential, credentialExpiresAt, share } = minted;
    return await this.devices.pair({ principal, credential, credentialExpiresAt, ...(share !== undefined ? { share } : {}) }, { name: minted.name, ...from });
  }

  /** The live device that the cookie and the page's key name together; a use moves its idle end on. */
  check(cookie: string | null, key: string | null, address: string | null = null): Promise<LiveSession | null> {
    return this.devices.check(cookie, key, address);
  }

  /** Why the device the cookie and key name is signed out, when they name one that was paired. */
  ended(cookie: string | null, key: string | null): Promise<"unpaired" | "expired" | null> {
    return this.devices.ended(cookie, key);
  }

  /** Ties a page's connection to its device: it is closed when the device is signed out or its credential expires. */
  attach(device: LiveSession, socket: SessionSocket): () => void {
    let attached = this.#attached.get(device.id);
    if (!attached) {
      attached = { principal: device.principal.name, sockets: new Set(), timer: null };
      this.#attached.set(device.id, attached);
      this.#endAtExpiry(device.id, attached, device.credentialExpiresAt);
    }
    const held = attached;
    held.sockets.add(socket);
    return () => {
      if (!held.sockets.delete(socket)) return;
      // Its last page closing counts as a use.
      void this.devices.touch(device.id).catch(() => undefined);
      if (held.sockets.size > 0 || this.#attached.get(device.id) !== held) return;
      if (held.timer) clearTimeout(held.timer);
      this.#attached.delete(device.id);
    };
  }

  /** Unpairs the device a page presents (its "Unpair this device"): its pages close here, and on the other servers. */
  async unpair(cookie: string | null, key: string | null): Promise<LiveSession | null> {
    return await this.devices.unpair(cookie, key);
  }

  /** Closes the pages of these devices (they were unpaired, here or on another server); how many closed. */
  endDevices(ids: readonly string[], reason: string): number {
    let closed = 0;
    for (const id of ids) closed += this.#close(id, reason);
    return closed;
  }

  /** A principal was revoked: the pages of its devices close, its codes are spent. */
  endPrincipal(name: string): number {
    let closed = 0;
    for (const [id, attached] of this.#attached) if (attached.principal === name) closed += this.#close(id, "signed out: credential revoked");
    for (const [key, code] of this.#codes) if (code.principal.name === name) this.#codes.delete(key);
    return closed;
  }

  get size(): { codes: number; attached: number } {
    this.#prune();
    return { codes: this.#codes.size, attached: this.#attached.size };
  }

  /** The server stops: pages close (their devices stay paired), codes are forgotten, timers go. */
  clear(): void {
    clearInterval(this.#touchTimer);
    for (const id of [...this.#attached.keys()]) this.#close(id, "server shutting down");
    this.#codes.clear();
  }

  #close(id: string, reason: string): number {
    const attached = this.#attached.get(id);
    if (!attached) return 0;
    this.#attached.delete(id);
    if (attached.timer) clearTimeout(attached.timer);
    for (const socket of attached.sockets) socket.close(1008, reason);
    return attached.sockets.size;
  }

  /** A device whose credential expires is signed out then, its pages closed, whether or not anyone asks. */
  #endAtExpiry(id: string, attached: Attached, at: number | null): void {
    if (at === null) return;
    const wait = at - this.#now();
    attached.timer = setTimeout(
      () => {
        if (this.#attached.get(id) !== attached) return;
        if (at <= this.#now()) this.#close(id, "signed out: credential expired");
        else this.#endAtExpiry(id, attached, at);
      },
      Math.min(Math.max(0, wait), MAX_TIMER_MS),
    );
    attached.timer.unref?.();
  }

  #prune(): void {
    const now = this.#now();
    for (const [key, code] of this.#codes) if (code.expiresAt <= now) this.#codes.delete(key);
  }
}

const capped = (at: number, limit: number | null) => (limit === null ? at : Math.min(at, limit));
