import { describe, expect, it } from "vitest";
import { coversEgress, egressRules, egressText, hostProblem, matchingEgressRule, parseEgressRule, shownHost } from "../../src/protocol/egress.js";
import { EgressList } from "../../src/protocol/egress-schema.js";

describe("egress allowlist entries", () => {
  it("parses names, wildcards, ports and addresses", () => {
    expect(parseEgressRule("Registry.NPMjs.org")).toMatchObject({ host: "registry.npmjs.org", wildcard: false, port: null, address: false });
    expect(parseEgressRule("*.github.com:443")).toMatchObject({ host: "github.com", wildcard: true, port: 443 });
    expect(parseEgressRule("10.0.0.5")).toMatchObject({ host: "10.0.0.5", address: true, port: null });
    expect(parseEgressRule("[::1]:8080")).toMatchObject({ host: "::1", address: true, port: 8080 });
    expect(parseEgressRule("fe80::1")).toMatchObject({ host: "fe80::1", address: true });
  });

  it("refuses what is not an entry, saying why", () => {
    for (const bad of ["", "*", "*.org", "a.*.org", "exa mple.org", "example.org:0", "example.org:99999", "example.org:http", "-x.org", "http://x.org"])
      expect(typeof parseEgressRule(bad), bad).toBe("string");
    const parsed = EgressList.safeParse(["ok.example", "*.org"]);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toContain("a wildcard must name a domain with a dot");
  });

  it("matches a name exactly, a wildcard only below its domain, a port when one is given", () => {
    const rules = ["example.org", "*.github.com", "api.test:8443"].map((e) => parseEgressRule(e)) as Exclude<ReturnType<typeof parseEgressRule>, string>[];
    expect(matchingEgressRule(rules, "EXAMPLE.org.", 80)?.text).toBe("example.org");
    expect(matchingEgressRule(rules, "sub.example.org", 80)).toBeNull();
    expect(matchingEgressRule(rules, "api.github.com", 443)?.text).toBe("*.github.com");
    expect(matchingEgressRule(rules, "github.com", 443)).toBeNull();
    expect(matchingEgressRule(rules, "evilgithub.com", 443)).toBeNull();
    expect(matchingEgressRule(rules, "api.test", 8443)?.text).toBe("api.test:8443");
    expect(matchingEgressRule(rules, "api.test", 443)).toBeNull();
  });

  it("a list covers itself and narrower lists, never one more host", () => {
    const a = ["registry.npmjs.org", "*.github.com"];
    expect(coversEgress(a, a)).toBe(true);
    expect(coversEgress(a, ["registry.npmjs.org"])).toBe(true);
    expect(coversEgress(a, ["api.github.com:443", "*.x.github.com"])).toBe(true);
    expect(coversEgress(a, [...a, "evil.example"])).toBe(false);
    expect(coversEgress(a, ["github.com"])).toBe(false);
    expect(coversEgress(["example.org:443"], ["example.org"])).toBe(false);
  });

  it("is shown as the project's hosts and the ones asked", () => {
    expect(egressText({ hosts: ["registry.npmjs.org", "*.github.com"], asked: ["evil.example"] })).toBe(
      "registry.npmjs.org, *.github.com, +1 asked: evil.example",
    );
  });
});

describe("host names a connection gives, checked before any rule is matched", () => {
  it("takes host names, addresses and a final dot", () => {
    for (const good of ["github.com", "API.GitHub.com.", "xn--bcher-kva.example", "10.0.0.5", "::1", "[::1]", "a-b.c0"])
      expect(hostProblem(good), good).toBeNull();
  });

  it("refuses a NUL, a control character, a space, a percent sign, non-ASCII letters, empty and long labels, each saying why", () => {
    expect(hostProblem("deb.debian.org\u0000.github.com")).toBe("it holds a NUL byte");
    expect(hostProblem("a\u0007.github.com")).toBe("it holds a control character");
    expect(hostProblem("a .github.com")).toBe("it holds a space");
    expect(hostProblem("a%00.github.com")).toBe("it holds a percent sign");
    expect(hostProblem("bücher.example")).toContain("punycode");
    expect(hostProblem("a..github.com")).toContain("empty label");
    expect(hostProblem(`${"a".repeat(64)}.github.com`)).toBe("a label is 64 characters long (at most 63)");
    expect(hostProblem(`${"a.".repeat(127)}com`)).toBe("it is 257 characters long (at most 253)");
    expect(hostProblem("a_b.github.com")).toContain('it holds "_"');
    expect(hostProblem("-a.github.com")).toBe("a label starts or ends with a hyphen");
    expect(hostProblem("[not-v6]")).toContain("IPv6");
    expect(hostProblem("")).toBe("empty");
  });

  it("a name that is none matches no rule, whatever follows its NUL", () => {
    const rules = egressRules(["*.github.com"]);
    expect(matchingEgressRule(rules, "deb.debian.org\u0000.github.com", 443)).toBeNull();
    expect(matchingEgressRule(rules, "api.github.com", 443)?.text).toBe("*.github.com");
  });

  it("shows a name as printable ASCII, escaping the rest", () => {
    expect(shownHost("a\u0000b é")).toBe("a\\x00b\\x20\\xe9");
    expect(shownHost("x".repeat(100))).toHaveLength(80);
  });
});
