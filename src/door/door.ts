import type { IncomingMessage, ServerResponse } from "node:http";
import { type BodyDeadline, readBody, readJson } from "./body.js";
import { DoorError, DoorFull } from "./errors.js";
import { type Holder, type OpenRequests, PrincipalTable } from "./table.js";

/*
 * The front door /mcp and /acp share: who may come in (Host and Origin, then the credential, never one in the URL;
 * a runner's credential has nothing to talk to), how many requests each principal has under way at both doors
 * together (open SSE streams included) and in all, with room kept for the home above that, and how long a body may
 * take to arrive. The tables each door keeps per caller are `PrincipalTable`s (table.ts); their answers when full
 * and every other refusal have one shape (errors.ts); their answers cross to node:http through web.ts.
 */

/** Who calls, as the server's authentication found it. */
export interface DoorCaller {
  /** The principal's name (shown as who proposed). */
  name: string;
  role: string;
  /** The bearer credential it presented, which the door's Spool connections present in turn. */
  credential: string;
  /** When that credential expires (ms since the epoch); what it holds ends then. Null: never. */
  expiresAt?: number | null;
  /**
   * Whose bounds it counts against: the principal that minted its credential, and so on up to one the home minted
   * (so credentials a principal mints share its bounds). Its own name when not given.
   */
  share?: string;
  /** The home's own credential: it keeps room above every server-wide bound. */
  home?: boolean;
}

export interface DoorLimits {
  /** Requests under way at /mcp and /acp together, every principal's (open SSE streams included). */
  maxRequests: number;
  /** Of them, one principal's (with the credentials it minted). */
  maxRequestsPerPrincipal: number;
  /** Room kept for the home's credential and the home's Unix socket above every server-wide bound. */
  homeReserve: number;
  /** Milliseconds a request's body may take to arrive, from its headers; past it the request is cut. */
  bodyDeadlineMs: number;
}

export const DEFAULT_DOOR_LIMITS: DoorLimits = { maxRequests: 512, maxRequestsPerPrincipal: 64, homeReserve: 32, bodyDeadlineMs: 10_000 };

export interface DoorOptions {
  /** The caller of a request, from its credential; null when it presented none that is good. */
  authenticate(request: IncomingMessage): Promise<DoorCaller | null>;
  /** Its connection is authenticated: the server's deadline for unauthenticated connections no longer applies. */
  authenticated?(request: IncomingMessage): void;
  /** Why a request's Host or Origin is refused (DNS rebinding, a foreign page); null when both are fine. */
  refusedOrigin(request: IncomingMessage): string | null;
  limits?: Partial<DoorLimits> | undefined;
}

/**
 * What a door's endpoint (/mcp's, /acp's) is given besides its own settings: the front door it shares (or the three
 * checks and limits to make one of its own: an endpoint on a server of its own, in tests), and where its callers'
 * Spool connections go.
 */
export interface EndpointOptions extends Omit<DoorOptions, "limits"> {
  /** The front door the endpoint shares with the other (its bounds count both); without one, one of its own. */
  frontDoor?: FrontDoor | undefined;
  /** That door's limits, when the endpoint makes its own. */
  doorLimits?: Partial<DoorLimits> | undefined;
  /** The server's own address, which each caller's Spool connection opens with its credential. */
  serverUrl(): string;
  /** Sent with each of those connections (Spool-Door): the server records their transport as the door's. */
  door?: string | undefined;
}

/** A caller let in: who, whose share it counts against, and when its body must have arrived. */
export interface Admitted {
  caller: DoorCaller;
  holder: Holder;
  deadline: BodyDeadline;
}

export class FrontDoor {
  readonly limits: DoorLimits;
  /** Requests under way, per share, and in all. */
  readonly #underWay = new Map<string, number>();
  #all = 0;
  /** Their responses, per principal: a revoked one's are cut (`endPrincipal`). */
  readonly #byPrincipal = new Map<string, Set<ServerResponse>>();

  constructor(private readonly options: DoorOptions) {
    this.limits = { ...DEFAULT_DOOR_LIMITS, ...options.limits };
  }

  /** The endpoint's door: the shared one it was given, else one of its own. */
  static of(options: EndpointOptions): FrontDoor {
    return options.frontDoor ?? new FrontDoor({ ...options, limits: options.doorLimits });
  }

  /**
   * A table of an endpoint's entries (sessions, connections) kept per caller: `total` and `perShare` its bounds and
   * the settings that hold them, the home's reserve this door's; an entry is busy while it has requests open (or
   * `busy` says so), and one past its share's bound ends its least recently used one.
   */
  table<T extends OpenRequests>(
    what: string,
    total: [name: string, bound: number],
    perShare: [name: string, bound: number],
    end: (entry: T, why: string) => void,
    busy: (entry: T) => boolean = (entry) => entry.open.size > 0,
  ): PrincipalTable<T> {
    return new PrincipalTable<T>(
      { total: total[1], perShare: perShare[1], reserve: this.limits.homeReserve },
      { what, names: { total: total[0], perShare: perShare[0] }, busy, lastUsed: (entry) => entry.lastSeen, end, evictBusy: true },
    );
  }

  /** Requests under way (tests and figures). */
  get underWay(): number {
    return this.#all;
  }

  /**
   * Who may come in: Host and Origin first, then the credential (`needs` says what a runner's credential lacks). A
   * WebSocket upgrade is checked this far: the connection it opens is counted by its door's table.
   */
  async admit(request: IncomingMessage, needs: string): Promise<Admitted> {
    const deadline = { until: performance.now() + this.limits.bodyDeadlineMs, ms: this.limits.bodyDeadlineMs };
    const refused = this.options.refusedOrigin(request);
    if (refused) throw new DoorError(403, refused);
    if (new URL(request.url ?? "/", "http://localhost").searchParams.has("token"))
      throw new DoorError(401, "The token is not accepted in the URL: send Authorization: Bearer <token>", { "WWW-Authenticate": "Bearer" });
    const caller = await this.options.authenticate(request);
    if (!caller) throw new DoorError(401, "Missing or wrong credential: send Authorization: Bearer <token>", { "WWW-Authenticate": "Bearer" });
    this.options.authenticated?.(request);
    if (caller.role === "runner") throw new DoorError(403, `${caller.name} is a runner credential: ${needs}`);
    // The Unix socket is the home's (its owner's alone): what comes by it keeps the home's room too.
    const home = caller.home === true || request.socket.remoteAddress === undefined;
    return { caller, holder: { share: caller.share ?? caller.name, name: caller.name, home, expiresAt: caller.expiresAt }, deadline };
  }

  /** `admit`, then the request counted under way until its response closes: past its share's bound or the doors', 429. */
  async enter(request: IncomingMessage, response: ServerResponse, needs: string): Promise<Admitted> {
    const admitted = await this.admit(request, needs);
    const { share, name, home } = admitted.holder;
    const { maxRequests, maxRequestsPerPrincipal, homeReserve } = this.limits;
    const mine = this.#underWay.get(share) ?? 0;
    if (mine >= maxRequestsPerPrincipal && !home)
      throw new DoorFull(
        `${name} and the credentials of its principal have ${mine} requests under way at /mcp and /acp, the most for one principal (limits.maxHttpRequestsPerPrincipal ${maxRequestsPerPrincipal}); retry when one ends`,
        "maxHttpRequestsPerPrincipal",
        maxRequestsPerPrincipal,
      );
    if (this.#all >= maxRequests + (home ? homeReserve : 0))
      throw new DoorFull(
        `The server has ${this.#all} requests under way at /mcp and /acp, its most (limits.maxHttpRequests ${maxRequests}); retry shortly`,
        "maxHttpRequests",
        maxRequests,
        5,
      );
    this.#underWay.set(share, mine + 1);
    this.#all++;
    const responses = this.#byPrincipal.get(name) ?? new Set();
    this.#byPrincipal.set(name, responses.add(response));
    response.once("close", () => {
      this.#all--;
      const left = (this.#underWay.get(share) ?? 1) - 1;
      if (left > 0) this.#underWay.set(share, left);
      else this.#underWay.delete(share);
      responses.delete(response);
      if (responses.size === 0 && this.#byPrincipal.get(name) === responses) this.#byPrincipal.delete(name);
    });
    return admitted;
  }

  /**
   * A principal's credential was revoked: its requests still under way at either door (a body still arriving, an
   * answer being written) are cut at once, so what they held is free before their deadlines. How many were cut.
   */
  endPrincipal(name: string): number {
    const responses = [...(this.#byPrincipal.get(name) ?? [])];
    for (const response of responses) response.destroy();
    return responses.length;
  }

  /** The body as text, at most `maxBytes`, by the caller's deadline. */
  async text(request: IncomingMessage, admitted: Admitted, maxBytes: number): Promise<string> {
    return (await readBody(request, maxBytes, admitted.deadline)).toString("utf8");
  }

  /** The body as JSON (sent as application/json), at most `maxBytes`, by the caller's deadline. */
  json(request: IncomingMessage, admitted: Admitted, maxBytes: number): Promise<unknown> {
    return readJson(request, maxBytes, admitted.deadline);
  }
}

/** What a door's endpoint answers once it is stopping: what it would open would end at once. */
export const shuttingDown = (): DoorError => new DoorError(503, "The server is shutting down");

/** A request's method at /mcp or /acp, both Streamable HTTP: GET, POST or DELETE, another refused (405) naming `path`. */
export function streamMethod(request: IncomingMessage, path: string): "GET" | "POST" | "DELETE" {
  const method = request.method ?? "GET";
  if (method !== "POST" && method !== "GET" && method !== "DELETE")
    throw new DoorError(405, `Method ${method} not allowed on ${path}`, { Allow: "GET, POST, DELETE" });
  return method;
}

/** The id a request names its session or connection by, in the header `name` (as written: Mcp-Session-Id), if any; twice, 400. */
export function entryId(request: IncomingMessage, name: string): string | undefined {
  const id = request.headers[name.toLowerCase()];
  if (Array.isArray(id)) throw new DoorError(400, `One ${name} header, please`);
  return id;
}
