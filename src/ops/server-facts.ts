import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SpoolConfig } from "../config/config.js";

/** The file in the home where the running server says how it was started (`spool doctor` reads it). */
export const SERVER_FACTS_FILE = "server.json";

/**
 * How the server running for a home was started, as it wrote it there once listening: what `spool doctor` describes
 * (flags such as `--port`, `--database` or `--demo-model` are nowhere else). No secret: no token, no API key, no
 * database password.
 */
export interface ServerFacts {
  pid: number;
  host: string;
  port: number;
  url: string;
  /** Its Unix socket; null when it has none. */
  socket: string | null;
  database: { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };
  models: { alias: string; provider: string; model: string; baseUrl: string; apiKey: boolean }[];
  /** The deadline it rejects undecided proposals by (absent: written by an older server). */
  decisionTimeoutMs?: number;
}

/** A PostgreSQL URL with its password replaced by ***. */
export const withoutPassword = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@");

export function serverFacts(config: SpoolConfig, listening: { port: number; url: string; socket: string | null }): ServerFacts {
  return {
    pid: process.pid,
    host: config.host,
    port: listening.port,
    url: listening.url,
    socket: listening.socket,
    database: config.databaseUrl ? { kind: "postgres", url: withoutPassword(config.databaseUrl) } : { kind: "sqlite", path: config.dbFile },
    models: config.agent.models.map((m) => ({ alias: m.alias, provider: m.provider, model: m.model, baseUrl: m.baseUrl, apiKey: Boolean(m.apiKey) })),
    decisionTimeoutMs: config.decisionTimeoutMs,
  };
}

/** Writes the facts into the home (0600, replaced whole: a reader never sees half of it). */
export function writeServerFacts(home: string, facts: ServerFacts): void {
  const file = join(home, SERVER_FACTS_FILE);
  const partial = `${file}.${process.pid}.tmp`;
  writeFileSync(partial, `${JSON.stringify(facts, null, 2)}\n`, { mode: 0o600 });
  renameSync(partial, file);
}

/** Removes them at the server's stop (only its own: a later server's are left). */
export function removeServerFacts(home: string): void {
  if (readServerFacts(home, process.pid)) rmSync(join(home, SERVER_FACTS_FILE), { force: true });
}

/** The facts the server with that pid wrote into the home; null when there are none, or another process wrote them. */
export function readServerFacts(home: string, pid: number): ServerFacts | null {
  try {
    const facts = JSON.parse(readFileSync(join(home, SERVER_FACTS_FILE), "utf8")) as ServerFacts;
    return facts.pid === pid && Number.isInteger(facts.port) && Array.isArray(facts.models) ? facts : null;
  } catch {
    return null;
  }
}
