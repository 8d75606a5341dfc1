import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { z } from "zod";
import type { DeviceView } from "../../protocol/methods/device.js";
import { HOME_PRINCIPAL_NAME, type PrincipalRef, ROLES } from "../../protocol/roles.js";
import { conflict, notFound, SpoolError } from "../../rpc/errors.js";
import type { DeviceRow } from "../../store/schema.js";
import type { Audit } from "../activity/audit.js";
import type { ClusterLink } from "../cluster.js";
import type { CoreDeps } from "../deps.js";
import { covers } from "../scope.js";
import { HOME_SHARE, shareOf } from "../share-key.js";

/** Whose credential a sign-in code stands for: its principal, which credential (a token id, `home:<id>`), until when. */
export interface DeviceGrant {
  principal: PrincipalRef;
  credential: string;
  credentialExpiresAt: number | null;
}

/** A device that is signed in: what a page acts as, and until when. */
export interface LiveDevice {
  id: string;
  name: string;
  principal: PrincipalRef;
  /** Its idle end, never past its credential's expiry. */
  expiresAt: number;
  credentialExpiresAt: number | null;
  /** Whose bounds it counts against: its credential's share (HOME_SHARE for the home's). */
  share: string;
}

/** Both halves of a new device's credential: the cookie's value and the page's key. */
export interface Paired {
  cookie: string;
  key: string;
  device: LiveDevice;
}

const sha256 = (secret: string) => createHash("sha256").update(secret).digest();
/** 256 random bits, URL- and cookie-safe. */
const secret = () => randomBytes(32).toString("base64url");
/** A cookie is `<device id>.<secret>`: the id finds the row, the secret is compared as its SHA-256. */
const COOKIE = /^([0-9a-f]{12})\.([A-Za-z0-9_-]{43})$/;
/** A use is written back at most this often per device (every request would be a write). */
const TOUCH_EVERY_MS = 60_000;
const NAME_MAX = 64;

/**
 * Paired devices: a browser signed in with a one-time code becomes a credential of its own, kept in the store (only
 * digests of its cookie's secret and its page's key), so it survives a restart and works on every server sharing the
 * database. It acts as the principal whose credential made the code, lives `deviceIdleMs` past its last use, never
 * past that credential's expiry, and ends when the credential is revoked or replaced. Revoking a device closes its
 * pages on every server (`onEnded` listeners here, the cluster bus elsewhere).
 */
export class Devices {
  readonly #listeners: ((ids: readonly string[], reason: string) => number)[] = [];
  #home: string | null = null;

  constructor(
    private readonly deps: CoreDeps,
    cluster: ClusterLink,
    private readonly audit: Audit,
  ) {
    cluster.onDevicesRevoked((ids) => void this.#tell(ids, "signed out: device unpaired"));
  }

  /** The home's token file's credential (`home:<id>`): its devices end when it is replaced. */
  useHomeCredential(credential: string): void {
    this.#home = credential;
  }

  /**
   * Pairs a new device for the grant's principal. Its bound counts the devices of every credential of its share (the
   * credentials minted under the same principal): past it the share's device used longest ago is unpaired. Past the
   * server-wide bound nothing is unpaired and the pairing is refused (LIMIT_EXCEEDED); the home's credential keeps
   * limits.homeReserve past it. Devices whose credential was revoked or expired count for neither.
   */
  async pair(grant: DeviceGrant, options: { name: string | null; userAgent: string | null; address: string | null }, now = Date.now()): Promise<Paired> {
    const limits = this.deps.config.limits;
    const repos = this.deps.repos.devices;
    const home = grant.credential === this.#home;
    const share = home ? HOME_SHARE : await this.#shareOf(grant.credential);
    const counted = (await repos.listShareDevices(share, home ? this.#home : null)).filter((row) => this.#alive(row, now));
    const mine = counted.filter((row) => row.principal === grant.principal.name);
    const stale = counted.length >= limits.maxDevicesPerPrincipal ? oldestFirst(counted).slice(0, counted.length - limits.maxDevicesPerPrincipal + 1) : [];
    const room = limits.maxDevices + (home ? limits.homeReserve : 0);
    if (stale.length === 0 && (await repos.countLiveDevices(this.#home, now)) >= room) {
      await this.#prune(now);
      if ((await repos.countLiveDevices(this.#home, now)) >= room)
        throw new SpoolError(
          "LIMIT_EXCEEDED",
          `This server has ${limits.maxDevices} paired devices (limits.maxDevices): unpair some with \`spool devices revoke\` before pairing another`,
          { limit: "maxDevices", max: limits.maxDevices },
        );
    }
    if (stale.length > 0) await this.#revoke(stale, "signed out: too many devices of this principal", now);
    const taken = new Set(mine.filter((row) => !stale.includes(row)).map((row) => row.name));
    const name = uniqueName(cleanName(options.name) ?? nameFromAgent(options.userAgent), taken);
    const cookieSecret = secret();
    const key = secret();
    const row = await repos.insertDevice({
      device_id: randomBytes(6).toString("hex"),
      name,
      principal: grant.principal.name,
      role: grant.principal.role,
      credential: grant.credential,
      secret_hash: sha256(cookieSecret).toString("hex"),
      key_hash: sha256(key).toString("hex"),
      created_at: now,
      created_address: options.address,
      last_seen_at: now,
      last_address: options.address,
      idle_ms: limits.deviceIdleMs,
      parent_expires_at: grant.credentialExpiresAt,
      revoked_at: null,
    });
    await this.audit.record({
      action: "sign-in",
      principal: grant.principal.name,
      transport: "page",
      client: "spool-web",
      detail: { address: options.address, device: row.device_id, name: row.name },
    });
    return { cookie: `${row.device_id}.${cookieSecret}`, key, device: this.#live(row, grant.principal, share) };
  }

  /** The share of the principal whose credential (token id) this is; the id itself when none holds it. */
  async #shareOf(credential: string): Promise<string> {
    const row = await this.deps.repos.principals.findPrincipalByTokenId(credential);
    return row ? shareOf(row) : credential;
  }

  /**
   * The live device a cookie and a page's key name together, or null. A use moves its idle end on; a use from an
   * address it was not last used from is audited.
   */
  async check(cookie: string | null, key: string | null, address: string | null, now = Date.now()): Promise<LiveDevice | null> {
    const match = cookie === null ? null : COOKIE.exec(cookie);
    if (!match || !key) return null;
    const row = await this.deps.repos.devices.findDevice(match[1]!);
    // Both digests are compared even for an unknown id, so the time taken says nothing of which ids exist.
    const secretOk = timingSafeEqual(row ? Buffer.from(row.secret_hash, "hex") : Buffer.alloc(32), sha256(match[2]!));
    const keyOk = timingSafeEqual(row ? Buffer.from(row.key_hash, "hex") : Buffer.alloc(32), sha256(key));
    if (!row || !secretOk || !keyOk || !this.#alive(row, now)) return null;
    const parent = await this.#parent(row, now);
    if (!parent) return null;
    const moved = address !== null && address !== row.last_address;
    if (moved || now - row.last_seen_at >= TOUCH_EVERY_MS) {
      await this.deps.repos.devices.touchDevice(row.device_id, now, address ?? row.last_address);
      row.last_seen_at = now;
      if (moved)
        await this.audit.record({
          action: "device/address",
          principal: row.principal,
          transport: "page",
          client: "spool-web",
          detail: { device: row.device_id, name: row.name, address, before: row.last_address },
        });
    }
    return this.#live(row, parent.principal, parent.share);
  }

  /**
   * Why the device the cookie and key name is no longer signed in, when it was paired here: `unpaired` (revoked,
   * unpaired by its page or its principal's credential revoked), `expired` (unused too long, or its credential
   * expired); null for a pair that names no device of this server's (never paired, or a forged cookie).
   */
  async ended(cookie: string | null, key: string | null, now = Date.now()): Promise<"unpaired" | "expired" | null> {
    const match = cookie === null ? null : COOKIE.exec(cookie);
    if (!match || !key) return null;
    const row = await this.deps.repos.devices.findDevice(match[1]!);
    const secretOk = timingSafeEqual(row ? Buffer.from(row.secret_hash, "hex") : Buffer.alloc(32), sha256(match[2]!));
    const keyOk = timingSafeEqual(row ? Buffer.from(row.key_hash, "hex") : Buffer.alloc(32), sha256(key));
    if (!row || !secretOk || !keyOk) return null;
    if (row.revoked_at !== null) return "unpaired";
    if (!this.#alive(row, now)) return "expired";
    return (await this.#parent(row, now)) === null ? "unpaired" : null;
  }

  /** Records a use of a device whose page is open (its idle end moves on). */
  async touch(deviceId: string, now = Date.now()): Promise<void> {
    const row = await this.deps.repos.devices.findDevice(deviceId);
    if (row && row.revoked_at === null) await this.deps.repos.devices.touchDevice(deviceId, now, row.last_address);
  }

  /**
   * Devices still signed in that `by` may see: its own principal's, or (`all`, an admin) every principal's its scope covers
   * (scope.ts `covers`: for a scoped admin, those of principals whose every project is one of its own, and its own).
   */
  async list(by: PrincipalRef, all: boolean, now = Date.now()): Promise<z.input<typeof DeviceView>[]> {
    return (await this.#visible(by, all, now)).map(deviceView);
  }

  /**
   * Unpairs the device of that id or name among those `by` may manage: its own principal's, or an admin's, every
   * principal's its scope covers. One outside them is NOT_FOUND, as a name no device has (its owner is not told).
   */
  async revoke(which: string, by: PrincipalRef, now = Date.now()): Promise<{ device: z.input<typeof DeviceView>; closed: number }> {
    const rows = await this.#visible(by, by.role === "admin", now);
    const owner = by.role === "admin" ? null : by.name;
    const byId = rows.filter((row) => row.device_id === which);
    const found = byId.length > 0 ? byId : rows.filter((row) => row.name === which);
    if (found.length === 0) throw notFound(`Device "${which}"${owner === null ? "" : ` of ${owner}`}`, { device: which });
    if (found.length > 1)
      throw conflict(`${found.length} devices are named "${which}": give the id (${found.map((row) => `${row.device_id} of ${row.principal}`).join(", ")})`, {
        device: which,
        ids: found.map((row) => row.device_id),
      });
    const closed = await this.#revoke(found, "signed out: device unpaired", now);
    return { device: deviceView(found[0]!), closed };
  }

  /** Unpairs the device a page presents (its own "Unpair"); false when it is no live device. */
  async unpair(cookie: string | null, key: string | null, now = Date.now()): Promise<LiveDevice | null> {
    const live = await this.check(cookie, key, null, now);
    if (!live) return null;
    const row = await this.deps.repos.devices.findDevice(live.id);
    if (row) await this.#revoke([row], "signed out: device unpaired", now);
    return live;
  }

  /** The live devices of `by`'s principal, or (`all`) of every principal `by`'s scope covers. */
  async #visible(by: PrincipalRef, all: boolean, now: number): Promise<DeviceRow[]> {
    const rows = (await this.deps.repos.devices.listDevices(all ? null : by.name)).filter((row) => this.#alive(row, now));
    if (!all || by.projects === null) return rows;
    const scopes = new Map<string, readonly string[] | null>();
    const visible: DeviceRow[] = [];
    for (const row of rows) {
      if (!scopes.has(row.credential)) scopes.set(row.credential, await this.#scopeOf(row));
      if (covers(by, scopes.get(row.credential) ?? null)) visible.push(row);
    }
    return visible;
  }

  /**
   * The projects a device's credential covers (null: every project): the home's token, or its principal's scope. One whose
   * credential is gone from the store is taken for every project's: an unscoped admin's alone to see.
   */
  async #scopeOf(row: DeviceRow): Promise<readonly string[] | null> {
    if (row.credential.startsWith("home:")) return null;
    const parent = await this.deps.repos.principals.findPrincipalByTokenId(row.credential);
    if (!parent || parent.projects === null) return null;
    return JSON.parse(parent.projects) as string[];
  }

  /** Called with device ids when they end (here or on another server): closes their pages, says how many. */
  onEnded(listener: (ids: readonly string[], reason: string) => number): void {
    this.#listeners.push(listener);
  }

  async #revoke(rows: readonly DeviceRow[], reason: string, now: number): Promise<number> {
    const revoked = await this.deps.repos.devices.revokeDevices(
      rows.map((row) => row.device_id),
      now,
    );
    const ids = revoked.map((row) => row.device_id);
    if (ids.length === 0) return 0;
    const closed = this.#tell(ids, reason);
    if (this.deps.bus.shared) this.deps.bus.publish({ t: "devices-revoked", ids });
    return closed;
  }

  /** Expired devices out of the count (revoked, so their rows stay for the trail). */
  async #prune(now: number): Promise<void> {
    const expired = (await this.deps.repos.devices.listDevices(null)).filter((row) => !this.#alive(row, now));
    await this.deps.repos.devices.revokeDevices(
      expired.map((row) => row.device_id),
      now,
    );
  }

  #alive(row: DeviceRow, now: number): boolean {
    if (row.revoked_at !== null) return false;
    if (row.parent_expires_at !== null && row.parent_expires_at <= now) return false;
    return row.last_seen_at + row.idle_ms > now;
  }

  /** The principal a device acts as and its share, while the credential that paired it holds (not revoked, expired or replaced). */
  async #parent(row: DeviceRow, now: number): Promise<{ principal: PrincipalRef; share: string } | null> {
    if (row.credential.startsWith("home:")) {
      return row.credential === this.#home && row.principal === HOME_PRINCIPAL_NAME
        ? { principal: { name: HOME_PRINCIPAL_NAME, role: "admin", projects: null }, share: HOME_SHARE }
        : null;
    }
    const parent = await this.deps.repos.principals.findPrincipalByTokenId(row.credential);
    if (!parent || parent.revoked_at !== null || (parent.expires_at !== null && parent.expires_at <= now)) return null;
    if (parent.name !== row.principal || !ROLES.includes(parent.role)) return null;
    const projects = parent.projects === null ? null : (JSON.parse(parent.projects) as string[]);
    return { principal: { name: parent.name, role: parent.role, projects }, share: shareOf(parent) };
  }

  #live(row: DeviceRow, principal: PrincipalRef, share: string): LiveDevice {
    return { id: row.device_id, name: row.name, principal, expiresAt: endOf(row), credentialExpiresAt: row.parent_expires_at, share };
  }

  #tell(ids: readonly string[], reason: string): number {
    let closed = 0;
    for (const listener of this.#listeners) closed += listener(ids, reason);
    return closed;
  }
}

const endOf = (row: DeviceRow) =>
  row.parent_expires_at === null ? row.last_seen_at + row.idle_ms : Math.min(row.last_seen_at + row.idle_ms, row.parent_expires_at);

function deviceView(row: DeviceRow): z.input<typeof DeviceView> {
  return {
    id: row.device_id,
    name: row.name,
    principal: row.principal,
    role: row.role,
    createdAt: row.created_at,
    createdAddress: row.created_address,
    lastSeenAt: row.last_seen_at,
    lastAddress: row.last_address,
    expiresAt: endOf(row),
  };
}

const oldestFirst = (rows: readonly DeviceRow[]) => [...rows].sort((a, b) => a.last_seen_at - b.last_seen_at || a.id - b.id);

/** A name as given: printable, trimmed, bounded; null when nothing is left. */
function cleanName(name: string | null): string | null {
  if (name === null) return null;
  const clean = name.replace(/\p{C}/gu, "").replace(/\s+/g, " ").trim().slice(0, NAME_MAX);
  return clean.length > 0 ? clean : null;
}

/** `Chrome on Android`, `Safari on iPhone`, … from a User-Agent; `browser` when it says nothing known. */
export function nameFromAgent(agent: string | null): string {
  const ua = agent ?? "";
  const browser = /Edg\//.test(ua)
    ? "Edge"
    : /Firefox\//.test(ua)
      ? "Firefox"
      : /HeadlessChrome\//.test(ua)
        ? "Headless Chrome"
        : /Chrome\//.test(ua)
          ? "Chrome"
          : /Safari\//.test(ua)
            ? "Safari"
            : /curl\//.test(ua)
              ? "curl"
              : "browser";
  const system = /iPhone/.test(ua)
    ? "iPhone"
    : /iPad/.test(ua)
      ? "iPad"
      : /Android/.test(ua)
        ? "Android"
        : /Mac OS X/.test(ua)
          ? "macOS"
          : /Windows/.test(ua)
            ? "Windows"
            : /Linux/.test(ua)
              ? "Linux"
              : null;
  return system ? `${browser} on ${system}` : browser;
}

/** The name, or the name with the first free ` (2)`, ` (3)` … among the principal's devices. */
function uniqueName(name: string, taken: ReadonlySet<string>): string {
  if (!taken.has(name)) return name;
  for (let n = 2; ; n++) if (!taken.has(`${name} (${n})`)) return `${name} (${n})`;
}
