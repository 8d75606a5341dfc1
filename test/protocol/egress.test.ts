import { describe, expect, it } from "vitest";
import { coversEgress, egressText, matchingEgressRule, parseEgressRule } from "../../src/protocol/egress.js";
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
