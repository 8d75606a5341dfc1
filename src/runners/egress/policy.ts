import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import { type EgressRule, egressRules, hostProblem, matchingEgressRule, normalHost } from "../../protocol/egress.js";

/*
 * What the egress proxy (proxy.ts) decides and tells: whether a host may be reached and at which address, each
 * outcome once on the command's stderr, and a refusal's words.
 */

export interface EgressProxyOptions {
  /** The list's entries (`registry.npmjs.org`, `*.github.com`, `example.org:8443`, `10.0.0.5`). */
  allow: readonly string[];
  /** Names the proxy resolves to these addresses before asking DNS (the operator's hosts file for it); trusted as given. */
  hosts?: Readonly<Record<string, string>>;
  /** Where each allowed and refused host is told once (the command's stderr). */
  report?: (line: string) => void;
}

/** A decision on one target. */
export type EgressVerdict = { ok: true; address: string; rule: EgressRule } | { ok: false; why: string; rule: EgressRule | null };

/** Addresses a name on the list may not resolve to unless the list names the address itself (loopback, private, link-local, ...). */
const INTERNAL = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 3],
] as const)
  INTERNAL.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 127],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const)
  INTERNAL.addSubnet(net, bits, "ipv6");

/** Whether `address` is loopback, private, link-local, multicast or otherwise not on the internet (IPv4-mapped IPv6 judged by its IPv4). */
export function isInternalAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return INTERNAL.check(mapped[1]!, "ipv4");
  const family = isIP(address);
  if (family === 0) return true;
  return INTERNAL.check(address, family === 4 ? "ipv4" : "ipv6");
}

/** At most this many report lines a command; then one line saying more were left out. */
export const MAX_REPORT_LINES = 64;

export class EgressPolicy {
  readonly rules: EgressRule[];
  readonly #hosts: Map<string, string>;
  readonly #report: (line: string) => void;
  readonly #told = new Set<string>();
  #cut = false;
  /** What was allowed and refused, for the record at the end: `host:port`, each once. */
  readonly allowed = new Set<string>();
  readonly blocked = new Set<string>();

  constructor(options: EgressProxyOptions) {
    this.rules = egressRules(options.allow);
    this.#hosts = new Map(Object.entries(options.hosts ?? {}).map(([name, address]) => [normalHost(name), address]));
    this.#report = options.report ?? (() => {});
  }

  /** Whether `host:port` may be reached, and at which address; `host` as the client wrote it, checked before anything else. */
  async decide(host: string, port: number): Promise<EgressVerdict> {
    const problem = hostProblem(host);
    if (problem !== null) return { ok: false, why: `not a host name: ${problem}`, rule: null };
    const target = normalHost(host);
    const rule = matchingEgressRule(this.rules, target, port);
    if (!rule) return { ok: false, why: "not on the list", rule: null };
    if (isIP(target) !== 0) return { ok: true, address: target, rule };
    const mapped = this.#hosts.get(target);
    if (mapped) return { ok: true, address: mapped, rule };
    let addresses: { address: string }[];
    try {
      addresses = await lookup(target, { all: true, verbatim: true });
    } catch (error) {
      return { ok: false, why: `its name does not resolve (${(error as NodeJS.ErrnoException).code ?? "error"})`, rule };
    }
    // An allowed name that points inside (DNS rebinding, a stale record) reaches only an address the list names itself.
    const outside = addresses.find((a) => !isInternalAddress(a.address) || matchingEgressRule(this.rules, a.address, port)?.address);
    if (!outside) return { ok: false, why: `it resolves to ${addresses[0]?.address ?? "nothing"}, an internal address the list does not name`, rule };
    return { ok: true, address: outside.address, rule };
  }

  /** Tells one outcome, once per host and outcome, bounded. */
  record(target: string, verdict: EgressVerdict): void {
    const line = verdict.ok ? `allowed: ${target}` : `blocked: ${target} (${verdict.why})`;
    const set = verdict.ok ? this.allowed : this.blocked;
    if (set.size < MAX_REPORT_LINES) set.add(target);
    if (this.#told.has(line)) return;
    if (this.#told.size >= MAX_REPORT_LINES) {
      if (!this.#cut) this.#report(`spool egress: more hosts than ${MAX_REPORT_LINES}; the rest are not told`);
      this.#cut = true;
      return;
    }
    this.#told.add(line);
    this.#report(`spool egress: ${line}`);
  }

  /** The body of a refusal: the host and the rule (or the list) that decided. */
  refusal(target: string, verdict: Extract<EgressVerdict, { ok: false }>): string {
    const list = this.rules.map((r) => r.text).join(", ") || "empty";
    const rule = verdict.rule ? `the rule "${verdict.rule.text}" names it, but ` : "";
    return `spool egress proxy: ${target} is blocked by the allowlist: ${rule}${verdict.why} (the list: ${list})\n`;
  }
}
