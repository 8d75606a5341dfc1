import { type BigIntStats, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ConfigFile, configPaths, type SpoolConfig, settingsFrom } from "../config/settings.js";

/*
 * The settings a client command reads (which server, which token), checked as `spool serve` checks them, without
 * loading zod (~0.1 s of CPU, a third of a short command's) where it can: config.json absent, or the same file (its
 * inode, size and change times) that an earlier command found good. That command wrote what it found in the home
 * (CHECKED: the file's identity, and its host and port); every other config.json is read and checked in full by
 * src/config/config.ts, loaded then, so a bad one fails as `spool serve` would: the same message.
 */

export type ClientSettings = Pick<SpoolConfig, "host" | "port" | "socketPath" | "tokenFile">;

/** Beside config.json: the identity of the config.json last found good, and its host and port. */
const CHECKED = ".config-checked.json";

interface Checked {
  file: string;
  host?: string;
  port?: number;
}

/** The settings from config.json, the environment and the defaults. */
export async function clientSettings(env: NodeJS.ProcessEnv): Promise<ClientSettings> {
  const paths = configPaths({}, env);
  const before = identity(paths.configPath);
  if (before === null) return settingsFrom(paths, {}, {}, env, () => null);
  const known = checkedFile(paths.home, before);
  if (known) return settingsFrom(paths, known, {}, env, () => null);
  const { loadConfig, readConfigFile } = await import("../config/config.js");
  const settings = loadConfig({}, env);
  const { host, port } = readConfigFile(paths.configPath);
  // Recorded only when the file did not change while it was read.
  if (identity(paths.configPath) === before) record(paths.home, { file: before, host, port });
  return settings;
}

/** config.json's identity: its inode, size and change times; null when there is none (any other trouble: the reader's to tell). */
function identity(path: string): string | null {
  let stats: BigIntStats;
  try {
    stats = statSync(path, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    return "unreadable";
  }
  return [stats.dev, stats.ino, stats.size, stats.mtimeNs, stats.ctimeNs].join(":");
}

/** What the last command found in the same config.json, if it is the same file. */
function checkedFile(home: string, file: string): ConfigFile | null {
  try {
    const checked = JSON.parse(readFileSync(join(home, CHECKED), "utf8")) as Checked;
    if (checked.file !== file || file === "unreadable") return null;
    return { ...(typeof checked.host === "string" ? { host: checked.host } : {}), ...(typeof checked.port === "number" ? { port: checked.port } : {}) };
  } catch {
    return null;
  }
}

/** Written whole (a file of its own, renamed into place); a home this user cannot write gets none, and is read in full again next time. */
function record(home: string, checked: Checked): void {
  const temporary = join(home, `${CHECKED}.${process.pid}`);
  try {
    writeFileSync(temporary, JSON.stringify(checked), { mode: 0o600 });
    renameSync(temporary, join(home, CHECKED));
  } catch {
    // Only a cache: the next command reads config.json in full.
  }
}
