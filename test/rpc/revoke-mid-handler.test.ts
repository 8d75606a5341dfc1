import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import type { SpoolNotifications } from "../../src/protocol/notifications.js";
import { ENTRY } from "../../src/protocol/status.js";
import { holdProposals } from "../fixtures/plugins/hold-proposals.js";
import { credentialClients } from "../helpers/credential-clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/*
 * A revocation revokes first, then reads its principal's waiting proposals and withdraws them. A proposal/create of
 * that principal already in its handler (past the credential's check, not stored yet) is stored after that read: the
 * handler withdraws it itself as it stores it. Made certain with a test plugin whose proposal:create filter holds the
 * proposal until the revocation has answered. A real server, real WebSocket clients.
 */
describe("a proposal under way while its credential is revoked", () => {
  let ts: TestServer;
  let admin: SpoolClient;
  const { as, closeAll } = credentialClients(() => ts.server.url);
  const credential = async (name: string) => (await admin.call("token/create", { name, role: "person" })).token;

  beforeAll(async () => {
    ts = await startTestServer({ plugins: [fileURLToPath(new URL("../fixtures/plugins/hold-proposals.ts", import.meta.url))] });
    admin = await ts.clientIn("alpha");
  });
  afterAll(async () => {
    closeAll();
    await ts.stop();
  });

  it("is withdrawn as it is stored: never approvable, said to every client, by the revocation", async () => {
    const late = await as(await credential("late"), "alpha");
    const watcher = await as(await credential("late-watcher"), "alpha");
    await late.call("run/create", { alias: "late-run" });
    const hold = holdProposals();
    const told = watcher.next("run/resolved", (p: SpoolNotifications["run/resolved"]) => p.run === "late-run", 10_000);
    void late.call("proposal/create", { run: "late-run", tool: "sh", command: "echo HOLD" }).catch(() => undefined);
    await hold.entered;
    // Nothing of it is stored yet: the revocation withdraws nothing.
    await expect(admin.call("token/revoke", { name: "late" })).resolves.toMatchObject({ closed: 1, withdrawn: 0 });
    hold.release();
    // Before the fix nothing was said, and it stayed 202: a person could approve a command of a revoked credential.
    const notice = await told;
    const { path } = notice;
    expect(path).toBe("log://turn_1/sh/echo-hold");
    expect(notice).toMatchObject({
      decision: "reject",
      status: ENTRY.rejected,
      resolver: { kind: "revoked", how: "revoked", connectionId: null, client: null },
      resolvedBy: "revocation",
      reason: expect.stringContaining('"late" was revoked'),
    });
    expect((await watcher.call("entry/get", { run: "late-run", path })).status).toBe(ENTRY.rejected);
    await expect(watcher.call("run/resolve", { run: "late-run", path, decision: "accept" })).rejects.toMatchObject({ data: { code: "CONFLICT" } });
    // Another principal's proposal through the same filter is untouched.
    await watcher.call("run/create", { alias: "watcher-run" });
    const mine = await watcher.call("proposal/create", { run: "watcher-run", tool: "sh", command: "echo HOLD not held" });
    expect((await watcher.call("entry/get", { run: "watcher-run", path: mine.path })).status).toBe(ENTRY.proposed);
  });
});
