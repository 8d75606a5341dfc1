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
    await alpha.call("run/create", { alias: "one" });
    await alpha.call("run/create", { alias: "two" });
    await ts.clientIn("beta");
    const fresh = await ts.client();
    const { projects } = await fresh.request("project/list", {});
    expect(projects.map((p: { name: string }) => p.name)).toEqual(["alpha", "beta"]);
    expect(projects[0]).toMatchObject({ name: "alpha", root: ts.root, runs: 2, open: 0, waiting: 0 });
    expect(projects[0].updatedAt).toBeGreaterThan(0);
    expect(projects[1]).toMatchObject({ runs: 0, updatedAt: null });
    // It is still there once the connection has joined a project.
    await fresh.initialize("beta");
    expect((await fresh.call("project/list", { limit: 1 })).projects).toHaveLength(1);
  });

  it("counts as waiting the runs with a proposal waiting for a decision, each once, and no longer once it is decided", async () => {
    const client = await ts.clientIn("deciding");
    for (const alias of ["fed", "other", "quiet"]) await client.call("run/create", { alias });
    // Runs fed by hand stay idle (200) while a client's proposal waits: a pending proposal is what counts.
    const first = await client.call("proposal/create", { run: "fed", tool: "sh", command: "true" });
    await client.call("proposal/create", { run: "fed", tool: "sh", command: "false" });
    const other = await client.call("proposal/create", { run: "other", tool: "sh", sandbox: "full", command: "sleep 30" });
    const counts = async () => {
      const { projects } = await client.request("project/list", {});
      const p = projects.find((x: { name: string }) => x.name === "deciding");
      return { runs: p.runs, waiting: p.waiting };
    };
    expect(await counts()).toEqual({ runs: 3, waiting: 2 });
    // Accepted, its command runs: that run waits on no one any more.
    await client.call("run/resolve", { run: "other", path: other.path, decision: "accept", runner: "self" });
    expect(await counts()).toEqual({ runs: 3, waiting: 1 });
    await client.call("run/resolve", { run: "fed", path: first.path, decision: "reject" });
    expect(await counts()).toEqual({ runs: 3, waiting: 1 });
    await client.call("run/abort", { run: "fed" });
    expect(await counts()).toEqual({ runs: 3, waiting: 0 });
    await client.call("stream/completed", { run: "other", path: other.path, exit_code: 0 });
  });

  it("refuses unknown fields and a limit out of range, changing nothing", async () => {
    const client = await ts.client();
    await expect(client.call("project/list", { limit: 0 })).rejects.toMatchObject({ code: -32602 });
    await expect(client.request("project/list", { all: true })).rejects.toMatchObject({ code: -32602 });
  });
});
