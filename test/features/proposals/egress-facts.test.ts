// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { SpoolClient } from "../../../src/client/spool-client.js";
import { factsText, factValue, proposalFacts } from "../../../src/protocol/proposal-facts.js";
import { ENTRY } from "../../../src/protocol/status.js";
import { finished } from "../../helpers/runners.js";
import { describeWithBwrap } from "../../helpers/sandbox.js";
import { eventually, startTestServer, type TestServer } from "../../helpers/server.js";

/**
 * Network mode allowlist through a real server and its embedded runner (SPEC §7 Runners, "Sandbox modes"): the
 * project's list comes from the configuration, a proposal may ask for more hosts, and both are facts every client
 * shows before the decision (one formatter, src/protocol/proposal-facts.ts); what the command reached and what was
 * refused is on its stderr; an "always allow" rule made with a list accepts that list or a narrower one only.
 */
describeWithBwrap("network allowlist facts, decisions and rules", () => {
  let ts: TestServer;
  let web: Server;
  let port: number;
  let client: SpoolClient;
  beforeAll(async () => {
    web = createServer((req, res) => res.end(`hello ${req.headers.host}\n`));
    await new Promise<void>((done) => web.listen(0, "127.0.0.2", done));
    port = (web.address() as AddressInfo).port;
    ts = await startTestServer({
      egress: {
        allow: ["registry.test", "*.github.test"],
        projects: {},
        hosts: { "registry.test": "127.0.0.2", "api.github.test": "127.0.0.2", "extra.test": "127.0.0.2", "evil.test": "127.0.0.2" },
      },
    });
    client = await ts.clientIn("egress");
    await client.call("run/create", { alias: "r" });
  });
  afterAll(async () => {
    await ts?.stop();
    await new Promise<void>((done) => web?.close(() => done()));
  });

  const shown = async (path: string) => (await client.call("entry/get", { run: "r", path })).attributes as Record<string, unknown>;

  it("a proposal asking for an extra host shows the project's list and the asked host as its network fact", async () => {
    const { path } = await client.call("proposal/create", { run: "r", tool: "sh", command: "true", allow_hosts: ["extra.test", "registry.test"] });
    const attributes = await shown(path);
    expect(attributes).toMatchObject({ network: "allowlist", egress: { hosts: ["registry.test", "*.github.test"], asked: ["extra.test"] } });
    expect(factValue(proposalFacts(attributes), "network")).toBe("allowlist (registry.test, *.github.test, +1 asked: extra.test)");
    expect(factsText(proposalFacts(attributes))).toMatch(/^network +allowlist \(registry\.test, \*\.github\.test, \+1 asked: extra\.test\)$/m);
    await client.call("run/resolve", { run: "r", path, decision: "reject" });
  });

  it("the accepted command reaches the listed and the asked hosts only, and its stderr says what was allowed and refused", async () => {
    const command = ["registry.test", "api.github.test", "extra.test", "evil.test"]
      .map((host) => `curl -s -o /dev/null -w '${host} %{http_code}\\n' http://${host}:${port}/`)
      .join("; ");
    const { path } = await client.call("proposal/create", { run: "r", tool: "sh", command, allow_hosts: ["extra.test"] });
    const resolved = await client.call("run/resolve", { run: "r", path, decision: "accept" });
    const done = await finished(client, "r", { path, stdout: resolved.channels[0]!.path, stderr: resolved.channels[1]!.path });
    expect(done.out.toString()).toBe("registry.test 200\napi.github.test 200\nextra.test 200\nevil.test 403\n");
    expect(done.err.toString()).toContain(`spool egress: blocked: evil.test:${port} (not on the list)\n`);
    expect(done.err.toString()).toContain(`spool egress: allowed: extra.test:${port}\n`);
    // Recorded on the log entry and in the audit trail, under the principal that accepted it.
    const reached = { allowed: ["registry.test", "api.github.test", "extra.test"].map((h) => `${h}:${port}`), blocked: [`evil.test:${port}`] };
    expect(done.log.attributes.egressReached).toEqual(reached);
    let audited: any;
    await eventually(async () => {
      audited = (await client.call("audit/list", { project: "egress" })).events.find((e: any) => e.action === "egress" && e.path === path);
      return Boolean(audited);
    });
    expect(audited).toMatchObject({ principal: "admin", detail: reached });
  });

  it("an always-allow rule made with list A does not accept the same command asking for A plus one host, but accepts A and narrower", async () => {
    const command = "echo ruled";
    const seed = await client.call("proposal/create", { run: "r", tool: "sh", command, allow_hosts: ["extra.test"] });
    const first = await client.request("run/resolve", { run: "r", path: seed.path, decision: "accept", always: true });
    expect(first.rule).toEqual(expect.any(Number));
    await finished(client, "r", { path: seed.path, stdout: first.channels[0].path, stderr: first.channels[1].path });
    const status = async (allow?: string[]) => {
      const { path } = await client.call("proposal/create", { run: "r", tool: "sh", command, ...(allow ? { allow_hosts: allow } : {}) });
      const log = await client.call("entry/get", { run: "r", path });
      if (log.status === ENTRY.proposed) await client.call("run/resolve", { run: "r", path, decision: "reject" });
      return log.status;
    };
    expect(await status(["extra.test", "evil.test"])).toBe(ENTRY.proposed);
    expect(await status(["extra.test"])).toBe(ENTRY.done);
    expect(await status()).toBe(ENTRY.done);
  });

  it("asking for hosts outside workspace-write, or a malformed host, is refused and stores nothing", async () => {
    const before = (await client.call("entry/list", { run: "r" })).entries.length;
    await expect(client.call("proposal/create", { run: "r", tool: "sh", command: "true", sandbox: "full", allow_hosts: ["x.test"] })).rejects.toThrow(
      /only a workspace-write command has a network allowlist/,
    );
    const refused = async (entry: string) => {
      const error: any = await client.call("proposal/create", { run: "r", tool: "sh", command: "true", allow_hosts: [entry] }).catch((e) => e);
      return { code: error.code, messages: JSON.stringify(error.data) };
    };
    expect(await refused("*.test")).toMatchObject({ code: -32602, messages: expect.stringContaining("a wildcard must name a domain with a dot") });
    expect(await refused("http://x.test")).toMatchObject({ code: -32602, messages: expect.stringContaining("the port after") });
    expect(await refused("exa mple.test")).toMatchObject({ code: -32602, messages: expect.stringContaining("not a host name") });
    expect((await client.call("entry/list", { run: "r" })).entries.length).toBe(before);
  });
});
