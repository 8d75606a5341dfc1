import type { IncomingMessage, ServerResponse } from "node:http";
import type { Registry } from "prom-client";
import type { Logger } from "../logger.js";
import { type Role, roleAllows } from "../protocol/roles.js";
import { notReadyBecause, type ReadinessSources } from "./health.js";

/** One HTTP route of `spool serve` outside the web view: it writes its own answer. */
export type Route = (request: IncomingMessage, response: ServerResponse) => void | Promise<void>;

/** Who asked, by the WebSocket's rules: the role their credential (or signed-in page) holds, else why not. */
export type OpsCaller = { role: Role; projects?: readonly string[] | null } | { refused: 401 | 403; body?: string };

export interface OpsRouteOptions {
  readiness: ReadinessSources;
  log: Logger;
  metrics: Registry;
  authenticate: (request: IncomingMessage) => Promise<OpsCaller>;
}

/**
 * The operator's routes: /healthz (the process answers) and /readyz (the store answers within a bound, the
 * migrations are applied, the home lock is still this server's), unauthenticated, so they say nothing but
 * "ok" or "not ready" (the reason goes to the log, once per change); /metrics for whoever the WebSocket would let in.
 */
export function opsRoutes(options: OpsRouteOptions): Map<string, Route> {
  let lastReason: string | null = null;
  return new Map<string, Route>([
    ["/healthz", (request, response) => plain(request, response, 200, "ok")],
    [
      "/metrics",
      async (request, response) => {
        if (!allowed(request, response)) return;
        // Prometheus's `authorization: {credentials_file: …}` sends the token as a bearer token.
        const who = await options.authenticate(request);
        if ("refused" in who) {
          const body = `${who.body ?? (who.refused === 401 ? "Missing or wrong token: send Authorization: Bearer <token>" : "Origin not allowed")}\n`;
          response.writeHead(who.refused, { "Content-Type": "text/plain; charset=utf-8", "WWW-Authenticate": "Bearer", "Cache-Control": "no-store" }).end(body);
          return;
        }
        // A viewer or above: the figures name projects and clients, which a runner's credential is not for.
        if (!roleAllows(who.role, "viewer")) {
          response
            .writeHead(403, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" })
            .end(`FORBIDDEN: /metrics needs the viewer role or above (this credential is a ${who.role}'s)\n`);
          return;
        }
        const all = await options.metrics.metrics();
        // A credential scoped to projects sees only its projects' series: no other project's name or figures.
        const text = who.projects ? scopedMetrics(all, who.projects) : all;
        response
          .writeHead(200, { "Content-Type": options.metrics.contentType, "Content-Length": String(Buffer.byteLength(text)), "Cache-Control": "no-store" })
          .end(request.method === "HEAD" ? undefined : text);
      },
    ],
    [
      "/readyz",
      async (request, response) => {
        if (!allowed(request, response)) return;
        const reason = await notReadyBecause(options.readiness);
        if (reason !== lastReason) {
          if (reason !== null) options.log.warn(`/readyz: not ready: ${reason}`);
          else if (lastReason !== null) options.log.info("/readyz: ready again");
          lastReason = reason;
        }
        plain(request, response, reason === null ? 200 : 503, reason === null ? "ok" : "not ready");
      },
    ],
  ]);
}

function allowed(request: IncomingMessage, response: ServerResponse): boolean {
  const method = request.method ?? "GET";
  if (method === "GET" || method === "HEAD") return true;
  response
    .writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" })
    .end(`Method ${method} not allowed\n`);
  return false;
}

/** A short text answer, never cached. */
export function plain(request: IncomingMessage, response: ServerResponse, status: number, text: string): void {
  if (!allowed(request, response)) return;
  const body = `${text}\n`;
  response
    .writeHead(status, {
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": String(Buffer.byteLength(body)),
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    })
    .end(request.method === "HEAD" ? undefined : body);
}

/**
 * The exposition text as a credential scoped to `projects` may read it: the process's own figures, and of Spool's
 * only the series labelled with one of its projects. Spool's server-wide series (producers, decisions, output,
 * connections, runners) sum every project's, so they are left out, their HELP and TYPE lines with them.
 */
export function scopedMetrics(text: string, projects: readonly string[]): string {
  const allowed = new Set(projects);
  const lines = text.split("\n");
  const nameOf = (line: string) => /^# (?:HELP|TYPE) (\S+)/.exec(line)?.[1] ?? /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? "";
  const sampleKept = (line: string) => {
    const project = /[{,]project="((?:[^"\\]|\\.)*)"/.exec(line)?.[1];
    return project !== undefined && allowed.has(project.replace(/\\(.)/g, (_m, c: string) => (c === "n" ? "\n" : c)));
  };
  const shown = new Set(lines.filter((l) => l.startsWith("spool_") && sampleKept(l)).map(nameOf));
  return lines
    .filter((line) => {
      const name = nameOf(line);
      if (!name.startsWith("spool_")) return true;
      return line.startsWith("#") ? shown.has(name) : sampleKept(line);
    })
    .join("\n");
}
