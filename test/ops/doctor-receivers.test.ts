import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import type { Check } from "../../src/ops/doctor.js";
import { freePort, SPOOL_BIN } from "../helpers/process.js";
import { type Receiver, startReceiver } from "../helpers/receiver.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

const run = promisify(execFile);
const byName = (checks: Check[], name: string) => checks.find((c) => c.name === name);

/**
 * Issue 57.5: `spool doctor` reports each receiver of notifications — when a delivery last reached it, since when it
 * fails, what it is owed — and says something is wrong when they fail (here: nothing listens on the port, ECONNREFUSED),
 * where it used to say "Nothing the configuration asks for is missing". The state is the server's, asked over its socket.
 * The server runs in this process (its home's lock, facts and socket are those `spool serve` writes): what is tested is
 * the `spool doctor` subprocess, not how the server was started (a `spool serve` subprocess cost ~2 s of CPU).
 */
describe("spool doctor and the receivers of notifications", () => {
  let ts: TestServer | null = null;
  let receiver: Receiver | null = null;
  afterAll(async () => {
    await ts?.stop();
    await receiver?.close();
  });

  // Five `spool doctor` processes: 9-15 s quiet, 28-71 s on a busy machine (ciQ: 71 s against the 90 it had).
  it("names each receiver's state, and FAILs when every receiver fails with ECONNREFUSED", async () => {
    // database "": a SQLite home, as `spool serve` keeps by default (under SPOOL_TEST_STORE=postgres too).
    ts = await startTestServer({ localRunner: false, database: "" });
    const { home, root } = ts;
    const admin = await SpoolClient.connect(ts.server.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
    receiver = await startReceiver();
    // Nothing listens on this port: every attempt is refused.
    const refused = `http://127.0.0.1:${await freePort()}/hook`;
    const env = { ...process.env, SPOOL_HOME: home, SPOOL_PORT: "", SPOOL_SERVER: "" };
    const doctor = async () => {
      const json = await run(process.execPath, [SPOOL_BIN, "doctor", "--json"], { env }).catch((e: { stdout: string }) => e);
      return JSON.parse(json.stdout) as { ok: boolean; checks: Check[] };
    };
    /** `spool doctor --json` and `spool doctor`, side by side (one state between two calls of the test's). */
    const doctorBoth = async () => {
      const [checked, human] = await Promise.all([
        doctor(),
        run(process.execPath, [SPOOL_BIN, "doctor"], { env }).catch((e: { stdout: string; code: number }) => e),
      ]);
      return { ...checked, human: human.stdout, code: "code" in human ? human.code : 0 };
    };
    try {
      await admin.initialize("doctored", { root });
      await admin.call("notify/add", { name: "pager", url: refused, events: ["proposal"] });
      await admin.call("notify/add", { name: "chat", url: receiver.url, events: ["proposal"] });
      // Nothing sent yet: said so, and nothing wrong.
      const before = await doctor();
      expect(byName(before.checks, "notify pager")).toMatchObject({ status: "ok", detail: expect.stringContaining("nothing sent yet") });

      await admin.call("run/create", { alias: "r" });
      await admin.call("proposal/create", { run: "r", tool: "sh", command: "echo hello" });
      await receiver.waitFor(1, 30_000);
      await eventually(
        async () => (await admin.call("notify/list", {})).targets.every((t) => (t.name === "pager" ? t.failingSince !== null : t.deliveredAt !== null)),
        30_000,
        "pager failing and chat delivered to",
      );
      const some = await doctorBoth();
      expect(byName(some.checks, "notify chat")).toMatchObject({ status: "ok", detail: expect.stringMatching(/last delivered \d+ s ago; nothing owed/) });
      const pager = byName(some.checks, "notify pager");
      expect(pager).toMatchObject({ status: "fail", data: { pending: 1, deliveredAt: null, lastError: "ECONNREFUSED" } });
      expect(pager?.detail).toMatch(/failing for \d+ s \(ECONNREFUSED\); 1 delivery owed; never delivered$/);
      expect(some.ok).toBe(false);
      expect(some.human).toMatch(/FAIL {2}notify pager +http:\/\/127\.0\.0\.1:\d+\/hook: failing for/);
      expect(some.human).not.toContain("Nothing the configuration asks for is missing.");

      // Every receiver failing: nobody is told of anything, and doctor says so.
      await admin.call("notify/remove", { name: "chat" });
      const all = await doctorBoth();
      expect(byName(all.checks, "notify pager")?.detail).toMatch(/ECONNREFUSED.*the only receiver, so nobody is told/);
      expect(all.code).toBe(1);
      expect(all.human).toMatch(/\d+ problems? to fix/);
      // spool notify list says the same state.
      const list = await run(process.execPath, [SPOOL_BIN, "notify", "list"], { env });
      expect(list.stdout).toMatch(/pager .*failing for \d+ s \(ECONNREFUSED\); 1 delivery owed; never delivered/);
    } finally {
      admin.close();
    }
  }, 240_000);
});
