import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Issue 54, point 3: a runner name belongs to the principal that first attached a runner under it. Any runner
 * credential of the project could attach as `dock` once the real Docker runner had left, shown exactly like it,
 * and a person's `--runner dock` sent it the command and its env.
 */
describe("runner names belong to the principal that first attached them", () => {
  let ts: TestServer;
  const clients: SpoolClient[] = [];
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    clients.push(await ts.clientIn("work"));
  });
  afterAll(async () => {
    for (const c of clients) await Promise.resolve(c.close()).catch(() => undefined);
    await ts.stop();
  });

  async function credential(name: string): Promise<string> {
    const admin = await ts.client();
    clients.push(admin);
    const { token } = await admin.call("token/create", { name, role: "runner", projects: ["work"] });
    return token;
  }
  async function attach(token: string, name: string) {
    const client = await SpoolClient.connect(ts.server.url, { token });
    clients.push(client);
    await client.initialize("work");
    return { client, result: client.call("runner/attach", { name, backend: "docker" }) };
  }

  it("a second runner credential attaching as dock after the first left is CONFLICT naming the owner; nothing is attached", async () => {
    const real = await credential("docker-host");
    const squatter = await credential("ci");
    const first = await attach(real, "dock");
    await expect(first.result).resolves.toMatchObject({ name: "dock" });
    await first.client.close();
    const admin = await ts.clientIn("work");
    clients.push(admin);
    // Gone from the list: the name is free to attach, but not to another principal.
    await expect.poll(async () => (await admin.call("runner/list", {})).runners.map((r: { name: string }) => r.name)).not.toContain("dock");
    const second = await attach(squatter, "dock");
    await expect(second.result).rejects.toMatchObject({ data: { code: "CONFLICT", principal: "docker-host", name: "dock" } });
    expect((await admin.call("runner/list", {})).runners.map((r: { name: string }) => r.name)).not.toContain("dock");
    // Another name is the squatter's own; the owner comes back under its name.
    await expect((await attach(squatter, "ci-box")).result).resolves.toMatchObject({ name: "ci-box" });
    const back = await attach(real, "dock");
    await expect(back.result).resolves.toMatchObject({ name: "dock" });
    await back.client.close();
    // An admin may attach under any name.
    const adminRunner = await SpoolClient.connect(ts.server.url, { token: ts.server.token });
    clients.push(adminRunner);
    await adminRunner.initialize("work");
    await expect(adminRunner.call("runner/attach", { name: "dock", backend: "docker" })).resolves.toMatchObject({ name: "dock" });
  });
});
