import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

/*
 * Propose and withdraw, over and over, within every rate bound: each withdrawn proposal keeps its 64 KiB command in
 * the store, so an agent doing it grows the disk by gigabytes an hour. Over a real `spool serve` with the default
 * limits: past limits.rejectedBytesPerHour (16 MiB) a proposal is refused and nothing more is stored.
 */

describe("proposals rejected or withdrawn, per principal and hour", () => {
  let serve: ServeProcess;
  let agent: SpoolClient;
  const clients: SpoolClient[] = [];

  beforeAll(async () => {
    const home = tempDir("spool-withdrawn-");
    const root = join(tempDir("spool-withdrawn-root-"), "alpha");
    mkdirSync(join(root, ".git"), { recursive: true });
    serve = await spawnServe(["--port", String(await freePort()), "--home", home, "--no-local-runner"]);
    const admin = await SpoolClient.connect(serve.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
    clients.push(admin);
    await admin.initialize(undefined, { root });
    const { token } = await admin.call("token/create", { name: "churner", role: "agent", projects: ["alpha"] });
    // Only the agent follows the project: nobody else is sent its 64 KiB proposals to read.
    admin.close();
    agent = await SpoolClient.connect(serve.url, { token });
    clients.push(agent);
    await agent.initialize("alpha");
    await agent.call("run/create", { alias: "churn" });
  }, 90_000);
  afterAll(async () => {
    for (const c of clients) if (!c.closed) c.close();
    await serve?.stop();
  });

  const stored = async () => (await agent.call("entry/list", { run: "churn", limit: 10_000 })).entries.length;

  it("an agent proposing 64 KiB commands and withdrawing each is refused within 16 MiB, and the store stops growing", async () => {
    const command = `echo ${"x".repeat(64 * 1024 - 16)}`;
    /**
     * Proposes and withdraws until refused (at most 400 times): how many were stored, the refusal's data, and when the
     * refused proposal was sent (the server found the hour spent at some moment after it).
     */
    const churn = async () => {
      for (let made = 0; made < 400; made++) {
        const sentAt = performance.now();
        try {
          const { path } = await agent.call("proposal/create", { run: "churn", tool: "sh", command });
          await agent.call("run/resolve", { run: "churn", path, decision: "reject" });
        } catch (error) {
          return { made, refusedAt: sentAt, refusal: (error as { data?: { code?: string; limit?: string; retryAfterMs?: number } }).data };
        }
      }
      return { made: 400, refusedAt: performance.now(), refusal: undefined };
    };
    const { made, refusedAt, refusal } = await churn();
    expect(refusal).toMatchObject({ code: "LIMIT_EXCEEDED", limit: "rejectedBytesPerHour" });
    expect(refusal?.retryAfterMs).toBeGreaterThan(0);
    // 16 MiB of 64 KiB commands: about 250 were stored, not 400.
    expect(made).toBeGreaterThan(200);
    expect(made).toBeLessThan(260);
    // Past it the store grows at the bucket's refill alone (16 MiB an hour: a 64 KiB proposal every 14 s), however
    // often the agent tries: of 20 tries, only as many as the bucket refilled since it was found spent are stored —
    // counted from the refused proposal's sending, not from the first try (a busy CI run spent seconds on the list
    // between them, and stored one more than the tries' own time refilled).
    const before = await stored();
    let stored20 = 0;
    for (let i = 0; i < 20; i++) {
      try {
        const { path } = await agent.call("proposal/create", { run: "churn", tool: "sh", command });
        await agent.call("run/resolve", { run: "churn", path, decision: "reject" });
        stored20++;
      } catch (error) {
        expect(error).toMatchObject({ data: { code: "LIMIT_EXCEEDED", limit: "rejectedBytesPerHour" } });
      }
    }
    const refilled = ((performance.now() - refusedAt) / 1000) * ((16 * 1024 * 1024) / 3600);
    expect(stored20).toBeLessThanOrEqual(Math.ceil(refilled / (64 * 1024)));
    expect(await stored()).toBe(before + stored20);
  }, 240_000);
});
