import { appendFileSync, chmodSync, statSync } from "node:fs";

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

/** How a line is written: `text` for people, `json` one object per line for a log collector. */
export type LogFormat = "text" | "json";

export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(message: string, extra?: unknown): void;
  info(message: string, extra?: unknown): void;
  warn(message: string, extra?: unknown): void;
  error(message: string, extra?: unknown): void;
}

/**
 * What a message is about, passed as its `extra`: each is a field of its own in a JSON line. Other keys of the
 * object go under `data`; an Error as `extra` becomes `error` (its stack).
 */
export interface LogContext {
  principal?: string;
  /** The client the principal acted through (spool-cli, spool-web…). */
  client?: string;
  project?: string;
  run?: string;
  path?: string;
  [key: string]: unknown;
}

const CONTEXT_KEYS = ["principal", "client", "project", "run", "path"] as const;

/** A log level named by a person (--log-level, SPOOL_LOG): one of LOG_LEVELS, else an error saying which exist. */
export function parseLogLevel(value: string, where: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new Error(`${where} must be one of ${LOG_LEVELS.join(", ")}, got "${value}"`);
}

/** A log format named by a person (--log-format, SPOOL_LOG_FORMAT): text or json. */
export function parseLogFormat(value: string, where: string): LogFormat {
  if ((LOG_FORMATS as readonly string[]).includes(value)) return value as LogFormat;
  throw new Error(`${where} must be one of ${LOG_FORMATS.join(", ")}, got "${value}"`);
}

/** One JSON line: time, level, message, then the context's fields where the message has them. */
function jsonLine(level: string, message: string, extra: unknown): string {
  const line: Record<string, unknown> = { time: new Date().toISOString(), level, message };
  if (extra instanceof Error) line.error = extra.stack ?? extra.message;
  else if (extra !== null && typeof extra === "object" && !Array.isArray(extra)) {
    const data: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(extra)) {
      if ((CONTEXT_KEYS as readonly string[]).includes(key)) line[key] = value;
      else data[key] = value instanceof Error ? (value.stack ?? value.message) : value;
    }
    if (Object.keys(data).length > 0) line.data = data;
  } else if (extra !== undefined) line.data = extra;
  return `${JSON.stringify(line)}\n`;
}

function textSuffix(extra: unknown): string {
  return extra === undefined ? "" : ` ${extra instanceof Error ? (extra.stack ?? extra.message) : JSON.stringify(extra)}`;
}

/**
 * A plain logger: one line per message on stderr, or appended to `file` (created 0600, and a regular file made
 * 0600 if it was not: a log names projects, paths and principals). The level comes from the caller, else
 * SPOOL_LOG, else info; the format from the caller, else text.
 */
export function createLogger(level?: LogLevel, options: { file?: string; format?: LogFormat } = {}): Logger {
  const chosen = level ?? (process.env.SPOOL_LOG ? parseLogLevel(process.env.SPOOL_LOG, "SPOOL_LOG") : "info");
  const threshold = ORDER[chosen] ?? ORDER.info;
  const json = options.format === "json";
  const file = options.file;
  if (file) {
    appendFileSync(file, "", { mode: 0o600 });
    if (statSync(file).isFile()) chmodSync(file, 0o600);
  }
  const write = (lvl: Exclude<LogLevel, "silent">) => (message: string, extra?: unknown) => {
    if (ORDER[lvl] < threshold) return;
    if (json) {
      const line = jsonLine(lvl, message, extra);
      if (file) appendFileSync(file, line, { mode: 0o600 });
      else process.stderr.write(line);
      return;
    }
    if (file) appendFileSync(file, `${new Date().toISOString()} ${lvl}: ${message}${textSuffix(extra)}\n`, { mode: 0o600 });
    else process.stderr.write(`[spool] ${lvl}: ${message}${textSuffix(extra)}\n`);
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}
