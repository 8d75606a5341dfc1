import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";

describe("project/list", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
  });
  afterAll(() => ts.stop());

  it("works before initialize and lists every project by name with its runs counted", async () => {
    const alpha = await ts.clientIn("alpha");
    await alpha.request("run/create", { alias: "one" });
    await alpha.request("run/create", { alias: "two" });
    await ts.clientIn("beta");
    const fresh = await ts.client();
    const { projects } = await fresh.request("project/list", {});
    expect(projects.map((p: { name: string }) => p.name)).toEqual(["alpha", "beta"]);
    expect(projects[0]).toMatchObject({ name: "alpha", root: ts.home, runs: 2, open: 0, waiting: 0 });
    expect(projects[0].updatedAt).toBeGreaterThan(0);
    expect(projects[1]).toMatchObject({ runs: 0, updatedAt: null });
    // It is still there once the connection has joined a project.
    await fresh.initialize("beta");
    expect((await fresh.request("project/list", { limit: 1 })).projects).toHaveLength(1);
  });

  it("refuses unknown fields and a limit out of range, changing nothing", async () => {
    const client = await ts.client();
    await expect(client.request("project/list", { limit: 0 })).rejects.toMatchObject({ code: -32602 });
    await expect(client.request("project/list", { all: true })).rejects.toMatchObject({ code: -32602 });
  });
});
