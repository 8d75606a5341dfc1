/*
 * A sandboxed command's egress allowlist (SPEC §7 Runners, "Sandbox modes", network `allowlist`): the hosts a proxy
 * outside the sandbox connects to for it, and nothing else. Plain TypeScript with no Node imports: every client shows
 * the list from here (the web page bundles it: no zod here; the schemas are in egress-schema.ts), and the server and the
 * runners parse it with the same rules.
 */

/** One entry of the list, parsed: a name (`*.` for its subdomains), or an address; a port, or any. */
export interface EgressRule {
  /** The entry as written (lower case): what a refusal and the facts name. */
  text: string;
  /** The name without `*.`, or the address (IPv6 without brackets). */
  host: string;
  /** `*.example.org`: every name below example.org, not example.org itself. */
  wildcard: boolean;
  /** An IP address, not a name: only a connection to that address matches. */
  address: boolean;
  /** null: any port. */
  port: number | null;
}

/** At most this many entries in one list (the project's and those a proposal asks for, each). */
export const MAX_EGRESS_RULES = 64;

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Whether `text` is an IPv4 address in dotted decimal (no leading zeros). */
export const isIpv4 = (text: string): boolean => IPV4.test(text);

/** Whether `text` is an IPv6 address (a loose but safe check: hex groups, one `::`, an optional trailing IPv4). */
export function isIpv6(text: string): boolean {
  if (!/^[0-9a-f:.]+$/i.test(text) || !text.includes(":")) return false;
  const parts = text.split("::");
  if (parts.length > 2) return false;
  const groups = parts.flatMap((part) => (part === "" ? [] : part.split(":")));
  const last = groups.at(-1) ?? "";
  const v4 = last.includes(".");
  if (v4 && !isIpv4(last)) return false;
  const hex = v4 ? groups.slice(0, -1) : groups;
  if (!hex.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return false;
  const count = hex.length + (v4 ? 2 : 0);
  return parts.length === 2 ? count < 8 : count === 8;
}

/** Whether `name` is a host name the list can hold (letters, digits, hyphens; dots between labels; at most 253 characters). */
export const isHostName = (name: string): boolean => name.length <= 253 && name.split(".").every((label) => LABEL.test(label));

/** Parses one entry (`registry.npmjs.org`, `*.github.com`, `example.org:8443`, `10.0.0.5`, `[::1]:80`); a string says what is wrong. */
export function parseEgressRule(entry: string): EgressRule | string {
  const text = entry.trim().toLowerCase();
  if (text === "") return "an empty entry";
  let host = text;
  let port: number | null = null;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2] === undefined ? null : Number(bracketed[2]);
  } else if (!isIpv6(text)) {
    const colon = text.lastIndexOf(":");
    if (colon >= 0) {
      const digits = text.slice(colon + 1);
      if (!/^\d{1,5}$/.test(digits)) return `"${entry}": the port after ":" must be a number`;
      host = text.slice(0, colon);
      port = Number(digits);
    }
  }
  if (port !== null && (port < 1 || port > 65535)) return `"${entry}": the port must be 1-65535`;
  if (isIpv4(host) || isIpv6(host)) return { text, host, wildcard: false, address: true, port };
  const wildcard = host.startsWith("*.");
  const name = wildcard ? host.slice(2) : host;
  if (name.includes("*")) return `"${entry}": a wildcard may only start the name ("*.example.org")`;
  if (!isHostName(name)) return `"${entry}": not a host name, "*." and a name, or an IP address (with an optional ":port")`;
  if (wildcard && !name.includes(".")) return `"${entry}": a wildcard must name a domain with a dot ("*.example.org", not "*.org")`;
  return { text, host: name, wildcard, address: false, port };
}

/** Parses a list that was checked already (EgressList, egress-schema.ts); an entry that fails is left out. */
export const egressRules = (entries: readonly string[]): EgressRule[] =>
  entries.flatMap((entry) => {
    const rule = parseEgressRule(entry);
    return typeof rule === "string" ? [] : [rule];
  });

/**
 * What is wrong with a host a connection names (a SOCKS5 name, a CONNECT or absolute-URI authority, a `Host` header, a TLS
 * server name), checked before it is matched against any rule; null: it is an IP address or a host name. A host name is
 * ASCII letters, digits and hyphens in labels of 1-63 characters joined by dots, at most 253 in all, one final dot
 * allowed; an internationalized name must come in its ASCII (punycode, `xn--`) form. A name with a NUL byte could match a
 * rule by what follows the NUL while the resolver, which stops at it, looks up what comes before.
 */
export function hostProblem(host: string): string | null {
  const bare = /^\[(.*)\]$/.exec(host)?.[1];
  if (bare !== undefined) return isIpv6(bare) ? null : "not an IPv6 address between its brackets";
  if (isIpv4(host) || isIpv6(host)) return null;
  if (host === "") return "empty";
  if (host.includes("\u0000")) return "it holds a NUL byte";
  if (/[\u0001-\u001f\u007f-\u009f]/.test(host)) return "it holds a control character";
  if (/\s/.test(host)) return "it holds a space";
  if (host.includes("%")) return "it holds a percent sign";
  if (/[^\u0000-\u007f]/.test(host)) return "it is not ASCII (an internationalized name goes in its punycode form, xn--…)";
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  if (name.length > 253) return `it is ${name.length} characters long (at most 253)`;
  const labels = name.split(".");
  if (labels.some((label) => label === "")) return "it has an empty label (two dots in a row, or a leading dot)";
  const long = labels.find((label) => label.length > 63);
  if (long !== undefined) return `a label is ${long.length} characters long (at most 63)`;
  const odd = /[^a-z0-9.-]/i.exec(name);
  if (odd) return `it holds "${odd[0]}" (a host name holds letters, digits, hyphens and dots)`;
  if (labels.some((label) => label.startsWith("-") || label.endsWith("-"))) return "a label starts or ends with a hyphen";
  return null;
}

/** A host as a report line shows it: printable ASCII as it is, anything else as `\xNN` or `\u{…}`, at most 80 characters. */
export function shownHost(host: string): string {
  const shown = host.replace(/[^\u0021-\u007e]/gu, (c) => {
    const code = c.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
  });
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}

/** The host a target names, as the rules compare it: lower case, without a final dot or IPv6 brackets. */
export const normalHost = (host: string): string =>
  host
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/\.$/, "");

/** The first rule that lets a connection to `host` (a name or an address) on `port` through; null: none does. */
export function matchingEgressRule(rules: readonly EgressRule[], host: string, port: number): EgressRule | null {
  const target = normalHost(host);
  // Checked here too, whoever calls: a name that is none matches no rule.
  if (hostProblem(target) !== null) return null;
  for (const rule of rules) {
    if (rule.port !== null && rule.port !== port) continue;
    if (rule.wildcard ? target.endsWith(`.${rule.host}`) : target === rule.host) return rule;
  }
  return null;
}

/** The entries of `wider` that cover every entry of `narrower`: whether a rule made with `wider` may accept `narrower`. */
export function coversEgress(wider: readonly string[], narrower: readonly string[]): boolean {
  const rules = egressRules(wider);
  return egressRules(narrower).every((entry) =>
    rules.some((rule) => {
      if (rule.port !== null && rule.port !== entry.port) return false;
      if (rule.address || entry.address) return rule.address === entry.address && rule.host === entry.host;
      if (!rule.wildcard) return !entry.wildcard && rule.host === entry.host;
      return (entry.wildcard && entry.host === rule.host) || entry.host.endsWith(`.${rule.host}`);
    }),
  );
}

/** What a proposal's network allowlist is: the project's list, and the hosts the proposal asked for beyond it. */
export interface EgressFact {
  hosts: string[];
  asked: string[];
}

/** The list a command runs with: the project's and the asked hosts, each once, in that order. */
export const egressAllowed = (fact: EgressFact): string[] => [...new Set([...fact.hosts, ...fact.asked])];

/** The allowlist fact from a log entry's `egress` attribute; null when it has none (or not in this shape). */
export function egressOf(value: unknown): EgressFact | null {
  if (value === null || typeof value !== "object") return null;
  const { hosts, asked } = value as { hosts?: unknown; asked?: unknown };
  const strings = (list: unknown) => (Array.isArray(list) ? list.filter((x): x is string => typeof x === "string") : null);
  const h = strings(hosts);
  const a = strings(asked);
  return h && a ? { hosts: h, asked: a } : null;
}

/** `registry.npmjs.org, *.github.com, +1 asked: evil.example` (the words inside "allowlist (…)"); `shown` makes each host safe to show. */
export function egressText(fact: EgressFact, shown: (text: string) => string = (t) => t): string {
  const hosts = fact.hosts.length > 0 ? fact.hosts.map(shown).join(", ") : "no host of the project's list";
  return fact.asked.length > 0 ? `${hosts}, +${fact.asked.length} asked: ${fact.asked.map(shown).join(", ")}` : hosts;
}

/** What a command in network mode allowlist reached (`allowed`) and was refused (`blocked`), as `host:port`, each once. */
export interface EgressReached {
  allowed: string[];
  blocked: string[];
}

/** The `egressReached` attribute a finished command's log entry holds; null when it has none (or not in this shape). */
export function egressReachedOf(value: unknown): EgressReached | null {
  if (value === null || typeof value !== "object") return null;
  const { allowed, blocked } = value as { allowed?: unknown; blocked?: unknown };
  const strings = (list: unknown) => (Array.isArray(list) ? list.filter((x): x is string => typeof x === "string") : null);
  const a = strings(allowed);
  const b = strings(blocked);
  return a && b ? { allowed: a, blocked: b } : null;
}

/** `reached registry.npmjs.org:443; refused evil.example:443` (`shown` makes each host safe to show). */
export function egressReachedText(reached: EgressReached, shown: (text: string) => string = (t) => t): string {
  const list = (hosts: string[]) => (hosts.length === 0 ? "nothing" : hosts.map(shown).join(", "));
  return `reached ${list(reached.allowed)}; refused ${list(reached.blocked)}`;
}

/** The header a refusal carries, as other egress proxies name it. */
export const EGRESS_BLOCKED_HEADER = "x-proxy-error";
export const EGRESS_BLOCKED_VALUE = "blocked-by-allowlist";
