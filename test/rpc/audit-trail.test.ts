import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { startReceiver } from "../helpers/receiver.js";
import { tempDir } from "../helpers/server.js";

// The trail records every act with who and how, over a real `spool serve` (its embedded local runner).

describe("the audit trail", () => {
  let serve: ServeProcess;
  let admin: SpoolClient;

  beforeAll(async () => {
    const home = tempDir();
    const root = tempDir("spool-root-");
    mkdirSync(join(root, "p"));
    serve = await spawnServe(["--port", String(await freePort()), "--home", home]);
    admin = await SpoolClient.connect(serve.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
    await admin.initialize("p", { root: join(root, "p"), client: { name: "test-client", version: "1" } });
  }, 90_000);
  afterAll(async () => {
    admin?.close();
    await serve?.stop();
  });

  const acts = async (action: string) => (await admin.call("audit/list", {})).events.filter((e) => e.action === action);

  it("records a rule's creation (its id, facts, who set it) and each accept it makes as `rule #N` with setBy as a field", async () => {
    await admin.call("run/create", { alias: "r" });
    const first = await admin.call("proposal/create", { run: "r", tool: "sh", command: "true", env: { MODE: "x" } });
    const accepted = await admin.call("run/resolve", { run: "r", path: first.path, decision: "accept", always: true });
    const ruleId = accepted.rule!;
    const [created] = await acts("rule/create");
    expect(created).toMatchObject({
      principal: "admin",
      client: "test-client",
      run: "r",
      detail: { rule: ruleId, setBy: "admin", tool: "sh", commandHead: "true", envNames: ["MODE"], commandDigest: expect.stringMatching(/^sha256:/) },
    });
    const second = await admin.call("proposal/create", { run: "r", tool: "sh", command: "true", env: { MODE: "x" } });
    const byRule = (await acts("decision")).find((e) => e.path === second.path);
    expect(byRule).toMatchObject({ principal: `rule #${ruleId}`, client: null, detail: { how: "rule", rule: ruleId, setBy: "admin", resolver: "rule" } });
  });

  it("names how a person decided: a key by default, a flag when the client says so (spool act --yes)", async () => {
    await admin.call("run/create", { alias: "how" });
    const a = await admin.call("proposal/create", { run: "how", tool: "sh", command: "echo a" });
    const b = await admin.call("proposal/create", { run: "how", tool: "sh", command: "echo b" });
    await admin.call("run/resolve", { run: "how", path: a.path, decision: "reject" });
    await admin.call("run/resolve", { run: "how", path: b.path, decision: "reject", how: "flag" });
    const decisions = await acts("decision");
    expect(decisions.find((e) => e.path === a.path)?.detail).toMatchObject({ how: "key", resolver: "connection" });
    expect(decisions.find((e) => e.path === b.path)?.detail).toMatchObject({ how: "flag" });
  });

  it("records stream/signal and notify/test", async () => {
    await admin.call("run/create", { alias: "sig" });
    const { path } = await admin.call("proposal/create", { run: "sig", tool: "sh", command: "sleep 30" });
    const finished = admin.next("stream/finished", (p: { path: string }) => p.path === path, 30_000);
    await admin.call("run/resolve", { run: "sig", path, decision: "accept" });
    await admin.call("stream/signal", { run: "sig", path, signal: "KILL" });
    await finished;
    expect((await acts("signal")).find((e) => e.path === path)).toMatchObject({ principal: "admin", client: "test-client", detail: { signal: "KILL" } });
    const hook = await startReceiver();
    try {
      await admin.call("notify/add", { name: "t", url: hook.url });
      await admin.call("notify/test", { name: "t" });
      expect(await acts("notify/test")).toEqual([expect.objectContaining({ principal: "admin", detail: { name: "t", ok: true, status: 200 } })]);
    } finally {
      await hook.close();
    }
  }, 60_000);
});
