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

/**
 * Values that carry a credential whatever the variable is called: a URL with a password (`scheme://user:pass@`,
 * `redis://:pass@`), and the shapes of well-known tokens (OpenAI and Anthropic `sk-…`, GitHub `ghp_…`/`gho_…`/
 * `github_pat_…`, Slack `xox?-…`, AWS access key ids, GitLab `glpat-…`, a JWT, a PEM private key).
 */
const CREDENTIAL_VALUES = [
  /[a-z][a-z0-9+.-]*:\/\/[^/@\s:]*:[^/@\s]+@/i,
  /\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}/,
  /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}/,
  /\bgithub_pat_[A-Za-z0-9_]{20,}/,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/,
  /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/,
  /\bglpat-[A-Za-z0-9_-]{20,}/,
  /\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+/,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
];

/** Whether a value looks like it carries a credential (CREDENTIAL_VALUES), whatever its variable's name. */
export function carriesCredential(value: string): boolean {
  return CREDENTIAL_VALUES.some((shape) => shape.test(value));
}

/** A valid entry of `commandEnv`: a variable name, or a pattern with `*` (any run of characters). */
export const PASS_ENV_ENTRY = /^[A-Za-z_*][A-Za-z0-9_*]*$/;

function globRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/\*/g, ".*")}$`);
}

/**
 * The variables of `source` that `allowed` lets through. An exact name is
 * passed whatever it is called (that is configuring it by name); a pattern
 * with `*` never matches Spool's own variables, names that look like
 * secrets (`isSensitiveName`), nor values that carry a credential
 * (`carriesCredential`, issue 37): those are withheld, and `withheld` hears
 * their names (never their values).
 */
export function passedVariables(source: NodeJS.ProcessEnv, allowed: readonly string[], withheld?: (names: string[]) => void): Record<string, string> {
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
  const held: string[] = [];
  if (patterns.length > 0) {
    for (const [name, value] of Object.entries(source)) {
      if (value === undefined || name in passed || isSensitiveName(name)) continue;
      if (!patterns.some((p) => p.test(name))) continue;
      if (carriesCredential(value)) held.push(name);
      else passed[name] = value;
    }
  }
  if (held.length > 0) withheld?.(held.sort());
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
export function commandVariables(
  source: NodeJS.ProcessEnv,
  allowed: readonly string[],
  proposal: Record<string, string>,
  withheld?: (names: string[]) => void,
): Record<string, string> {
  return { ...passedVariables(source, allowed, withheld), ...proposal };
}
