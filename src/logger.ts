export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(message: string, extra?: unknown): void;
  info(message: string, extra?: unknown): void;
  warn(message: string, extra?: unknown): void;
  error(message: string, extra?: unknown): void;
}

/** A plain stderr logger; the level comes from SPOOL_LOG or the caller. */
export function createLogger(level: LogLevel = (process.env.SPOOL_LOG as LogLevel | undefined) ?? "info"): Logger {
  const threshold = ORDER[level] ?? ORDER.info;
  const write = (lvl: Exclude<LogLevel, "silent">) => (message: string, extra?: unknown) => {
    if (ORDER[lvl] < threshold) return;
    const suffix = extra === undefined ? "" : ` ${extra instanceof Error ? (extra.stack ?? extra.message) : JSON.stringify(extra)}`;
    process.stderr.write(`[spool] ${lvl}: ${message}${suffix}\n`);
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}
