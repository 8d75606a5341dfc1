import { homedir } from "node:os";

/**
 * What environment a command starts with (SPEC §7 Runners, "Environment").
 * Never the server's or the runner's whole environment: a fixed base, the
 * names the configuration lets through, and the proposal's own `env`.
 */

/** The base every command gets on the local backend (from the runner's environment, or the default when unset there). */
export const BASE_ENV_NAMES = ["PATH", "HOME", "LANG", "TERM"] as const;

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Defaults of the base variables the runner's environment does not set (HOME: the runner user's home directory). */
export const BASE_ENV_DEFAULTS = { PATH: DEFAULT_PATH, LANG: "C.UTF-8", TERM: "dumb" } as const;

/** Parts of a name that mark it as holding a secret, anywhere in the name (case-insensitive). */
const SECRET_SUBSTRINGS = /KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE|COOKIE|SESSION|AUTHORIZATION/i;
/** Words of a name (split at `_`) that mark it as holding a secret. */
const SECRET_WORDS = new Set(["AUTH", "PASS", "PWD", "PAT", "DSN"]);

/**
 * Whether a variable's name looks like it holds a secret (a key, token,
 * password, credential…) or is one of Spool's own (`SPOOL_*`). Such names
 * are only passed to commands when the configuration lists them exactly.
 */
export function isSensitiveName(name: string): boolean {
  if (/^SPOOL_/i.test(name)) return true;
  if (SECRET_SUBSTRINGS.test(name)) return true;
  return name
    .toUpperCase()
    .split("_")
    .some((word) => SECRET_WORDS.has(word));
}

/** A valid entry of `commandEnv`: a variable name, or a pattern with `*` (any run of characters). */
export const PASS_ENV_ENTRY = /^[A-Za-z_*][A-Za-z0-9_*]*$/;

function globRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/\*/g, ".*")}$`);
}

/**
 * The variables of `source` that `allowed` lets through. An exact name is
 * passed whatever it is called (that is configuring it by name); a pattern
 * with `*` never matches Spool's own variables or names that look like
 * secrets (`isSensitiveName`).
 */
export function passedVariables(source: NodeJS.ProcessEnv, allowed: readonly string[]): Record<string, string> {
  const passed: Record<string, string> = {};
  const patterns: RegExp[] = [];
  for (const entry of allowed) {
    if (!PASS_ENV_ENTRY.test(entry)) continue;
    if (entry.includes("*")) {
      patterns.push(globRegExp(entry));
      continue;
    }
    const value = source[entry];
    if (value !== undefined) passed[entry] = value;
  }
  if (patterns.length > 0) {
    for (const [name, value] of Object.entries(source)) {
      if (value === undefined || name in passed || isSensitiveName(name)) continue;
      if (patterns.some((p) => p.test(name))) passed[name] = value;
    }
  }
  return passed;
}

/** The base of a local command: PATH, HOME, LANG and TERM from `source`, with defaults where it has none. */
export function localBaseEnvironment(source: NodeJS.ProcessEnv): Record<string, string> {
  return {
    PATH: source.PATH || BASE_ENV_DEFAULTS.PATH,
    HOME: source.HOME || homedir(),
    LANG: source.LANG || BASE_ENV_DEFAULTS.LANG,
    TERM: source.TERM || BASE_ENV_DEFAULTS.TERM,
  };
}

/**
 * What a runner adds on top of its backend's base: the variables of its own
 * environment that the configuration lets through, then the proposal's `env`
 * (which wins).
 */
export function commandVariables(source: NodeJS.ProcessEnv, allowed: readonly string[], proposal: Record<string, string>): Record<string, string> {
  return { ...passedVariables(source, allowed), ...proposal };
}
