import { appendFileSync } from "node:fs";

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(message: string, extra?: unknown): void;
  info(message: string, extra?: unknown): void;
  warn(message: string, extra?: unknown): void;
  error(message: string, extra?: unknown): void;
}

/** A log level named by a person (--log-level, SPOOL_LOG): one of LOG_LEVELS, else an error saying which exist. */
export function parseLogLevel(value: string, where: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new Error(`${where} must be one of ${LOG_LEVELS.join(", ")}, got "${value}"`);
}

/**
 * A plain logger: one line per message on stderr, or appended to `file` (with the time in front). The level
 * comes from the caller, else SPOOL_LOG, else info.
 */
export function createLogger(level?: LogLevel, options: { file?: string } = {}): Logger {
  const chosen = level ?? (process.env.SPOOL_LOG ? parseLogLevel(process.env.SPOOL_LOG, "SPOOL_LOG") : "info");
  const threshold = ORDER[chosen] ?? ORDER.info;
  const write = (lvl: Exclude<LogLevel, "silent">) => (message: string, extra?: unknown) => {
    if (ORDER[lvl] < threshold) return;
    const suffix = extra === undefined ? "" : ` ${extra instanceof Error ? (extra.stack ?? extra.message) : JSON.stringify(extra)}`;
    if (options.file) appendFileSync(options.file, `${new Date().toISOString()} ${lvl}: ${message}${suffix}\n`, { mode: 0o600 });
    else process.stderr.write(`[spool] ${lvl}: ${message}${suffix}\n`);
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}
