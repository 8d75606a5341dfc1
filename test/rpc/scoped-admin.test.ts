import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { type Receiver, startReceiver } from "../helpers/receiver.js";
import { tempDir } from "../helpers/server.js";

// A project-scoped admin is an admin of its projects and nothing more, on every call (not at initialize alone):
// over a real `spool serve`, with real WebSocket clients and a real HTTP receiver.

describe("a scoped admin stays inside its scope", () => {
  let serve: ServeProcess;
  let home: string;
  let root: string;
  const clients: SpoolClient[] = [];
  let admin: SpoolClient;
  let scoped: SpoolClient;
  let hook: Receiver;

  const connect = async (token: string, project: string | null, dir?: string) => {
    const c = await SpoolClient.connect(serve.url, { token });
    clients.push(c);
    if (project !== null) await c.initialize(project, { root: dir, client: { name: "test-client", version: "1" } });
    return c;
  };

  beforeAll(async () => {
    home = tempDir();
    root = tempDir("spool-root-");
    for (const p of ["alpha", "beta"]) mkdirSync(join(root, p));
    serve = await spawnServe(["--port", String(await freePort()), "--home", home, "--no-local-runner"]);
    const homeToken = readFileSync(join(home, "token"), "utf8").trim();
    admin = await connect(homeToken, "alpha", join(root, "alpha"));
    await (await connect(homeToken, "beta", join(root, "beta"))).call("ping", {});
    await admin.call("token/create", { name: "ann", role: "person", projects: ["alpha"] });
    await admin.call("token/create", { name: "everywhere", role: "viewer" });
    const { token } = await admin.call("token/create", { name: "beta-admin", role: "admin", projects: ["beta"] });
    scoped = await connect(token, "beta");
    hook = await startReceiver();
  }, 90_000);
  afterAll(async () => {
    for (const c of clients) if (!c.closed) c.close();
    await hook?.close();
    await serve?.stop();
  });

  it("token/create: only credentials within its projects, and the refusal names no project it did not name", async () => {
    const unscoped = scoped.call("token/create", { name: "escape", role: "admin" });
    await expect(unscoped).rejects.toMatchObject({ data: { code: "FORBIDDEN", scope: ["beta"] } });
    await expect(unscoped).rejects.not.toThrow(/alpha/);
    await expect(scoped.call("token/create", { name: "escape2", role: "viewer", projects: ["beta", "alpha"] })).rejects.toMatchObject({
      data: { code: "FORBIDDEN" },
    });
    const made = await scoped.call("token/create", { name: "beta-viewer", role: "viewer", projects: ["beta"] });
    expect(made.principal).toMatchObject({ name: "beta-viewer", projects: ["beta"], createdBy: "beta-admin" });
    // What it made cannot join alpha.
    await expect(connect(made.token, "alpha")).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    const names = (await admin.call("token/list", {})).principals.map((p) => p.name);
    expect(names).not.toContain("escape");
    expect(names).not.toContain("escape2");
  });

  it("token/list shows only principals within its projects", async () => {
    const names = (await scoped.call("token/list", { revoked: true })).principals.map((p) => p.name);
    expect(names).toContain("beta-admin");
    expect(names).not.toContain("ann");
    expect(names).not.toContain("everywhere");
  });

  it("token/revoke of a principal outside its scope is NOT_FOUND, and that principal still works", async () => {
    for (const name of ["ann", "everywhere"]) {
      const refused = scoped.call("token/revoke", { name });
      await expect(refused).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
      await expect(refused).rejects.not.toThrow(/alpha/);
    }
    expect((await admin.call("token/list", {})).principals.map((p) => p.name)).toEqual(expect.arrayContaining(["ann", "everywhere"]));
  });

  it("audit/list returns only its projects' acts (and its own); asking for another project is FORBIDDEN", async () => {
    await admin.call("run/create", { alias: "secret-work" });
    await admin.call("proposal/create", { run: "secret-work", tool: "sh", command: "echo alpha-only" });
    const { events } = await scoped.call("audit/list", {});
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) expect(e.project === "beta" || e.principal === "beta-admin", JSON.stringify(e)).toBe(true);
    expect(JSON.stringify(events)).not.toContain("alpha");
    await expect(scoped.call("audit/list", { project: "alpha" })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    // The unscoped admin still reads everything.
    expect((await admin.call("audit/list", { project: "alpha" })).events.some((e) => e.action === "proposal")).toBe(true);
  });

  it("notify/*: only receivers of its projects; a receiver of another project gets nothing of it", async () => {
    await expect(scoped.call("notify/add", { name: "all", url: hook.url })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    await expect(scoped.call("notify/add", { name: "other", url: hook.url, projects: ["alpha"] })).rejects.toMatchObject({
      data: { code: "FORBIDDEN" },
    });
    await admin.call("notify/add", { name: "admins-own", url: "http://127.0.0.1:9/never", projects: ["alpha"] });
    await scoped.call("notify/add", { name: "beta-hook", url: hook.url, projects: ["beta"], events: ["proposal"] });
    expect((await scoped.call("notify/list", {})).targets.map((t) => t.name)).toEqual(["beta-hook"]);
    for (const method of ["notify/test", "notify/remove"] as const) {
      await expect(scoped.call(method, { name: "admins-own" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    }
    expect((await admin.call("notify/list", {})).targets.map((t) => t.name)).toEqual(["admins-own", "beta-hook"]);
    // alpha's proposal (with a secret in its env) reaches no receiver of beta; beta's does.
    await admin.call("proposal/create", { run: "secret-work", tool: "sh", command: "echo alpha", env: { TOKEN: "alpha-secret-value" } });
    const inBeta = clients[1]!;
    await inBeta.call("run/create", { alias: "b" });
    await inBeta.call("proposal/create", { run: "b", tool: "sh", command: "echo beta" });
    const [first] = await hook.waitFor(1);
    expect(JSON.parse(first!.body)).toMatchObject({ project: "beta" });
    expect((await admin.call("notify/test", { name: "beta-hook" })).ok).toBe(true);
    await hook.waitFor(2);
    expect(hook.received.map((r) => r.body).join("\n")).not.toContain("alpha");
  });

  it("cannot create a project by root alone (its name would be none of its own)", async () => {
    mkdirSync(join(root, "gamma"));
    const c = await SpoolClient.connect(serve.url, {
      token: (await admin.call("token/create", { name: "beta-admin-2", role: "admin", projects: ["beta"] })).token,
    });
    clients.push(c);
    await expect(c.initialize(undefined, { root: join(root, "gamma") })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    expect((await admin.call("project/list", {})).projects.map((p) => p.name)).not.toContain("gamma");
  });

  it("creates a project of its scope only in a directory apart from other projects': not on, inside or above another's root", async () => {
    // Before, a credential scoped to a new project made it on alpha's root, and its commands wrote alpha's files.
    mkdirSync(join(root, "alpha", "sub"));
    mkdirSync(join(root, "delta"));
    const { token } = await admin.call("token/create", { name: "delta-admin", role: "admin", projects: ["delta"] });
    const refusedRoots = [join(root, "alpha"), join(root, "alpha", "sub"), root];
    for (const dir of refusedRoots) {
      const c = await SpoolClient.connect(serve.url, { token });
      clients.push(c);
      const joined = c.initialize("delta", { root: dir });
      await expect(joined, dir).rejects.toMatchObject({ data: { code: "FORBIDDEN", root: dir } });
      // The refusal names the directory it was given, and no project.
      await expect(joined, dir).rejects.not.toThrow(/"alpha"|beta/);
      const created = c.call("project/create", { name: "delta", root: dir });
      await expect(created, dir).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
      c.close();
    }
    expect((await admin.call("project/list", {})).projects.map((p) => p.name)).not.toContain("delta");
    // Apart from the others, it is made; the home's admin (every project) is not held to this.
    const c = await SpoolClient.connect(serve.url, { token });
    clients.push(c);
    expect((await c.initialize("delta", { root: join(root, "delta") })).project).toMatchObject({ name: "delta" });
    expect((await admin.call("project/create", { name: "alpha-sub", root: join(root, "alpha", "sub") })).project.name).toBe("alpha-sub");
  });
});
