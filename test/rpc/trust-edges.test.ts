import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { factsText } from "../../src/protocol/proposal-facts.js";
import { credentialClients } from "../helpers/credential-clients.js";
import { RUNNER_CLAIM } from "../helpers/runner-claim.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/*
 * Issue 45, points 5 and 7, over a real server and real WebSockets: a runner's credential claims nothing a person
 * relies on (it cannot make itself the default runner; what it says of its sandbox is shown as its claim, with who
 * attached it), projects' roots are the admin's to give, /metrics and refusals name no project the caller cannot see.
 */
describe("trust edges: runners' claims, projects' roots, what a scoped credential sees", () => {
  let ts: TestServer;
  let admin: SpoolClient;
  /** WebSocket clients holding a credential, initialized into a project unless null; closed at the end. */
  const { as, closeAll } = credentialClients(() => ts.server.url);
  const token = async (name: string, role: string, projects?: string[]) =>
    (await admin.call("token/create", { name, role: role as "runner", ...(projects ? { projects } : {}) })).token;
  const factsOf = async (run: string, path: string) => (await admin.call("entry/get", { run, path })).producer!;

  const claim = RUNNER_CLAIM;

  beforeAll(async () => {
    ts = await startTestServer();
    admin = await ts.clientIn("alpha");
    await (await ts.clientIn("beta")).call("ping", {});
    await admin.call("run/create", { alias: "claims" });
  });
  afterAll(async () => {
    closeAll();
    await ts.stop();
  });

  it("a runner credential's attach asking to be (or to replace) the default is refused naming the person role, and attaches nothing", async () => {
    const runner = await as(await token("ci", "runner", ["alpha"]));
    await expect(runner.call("runner/attach", { name: "ci-1", backend: "local", default: true, replaceDefault: true, sandbox: claim })).rejects.toMatchObject({
      data: { code: "FORBIDDEN", role: "person", held: "runner" },
      message: expect.stringContaining("needs the person role"),
    });
    expect((await admin.call("runner/list", {})).runners.map((r) => r.name)).not.toContain("ci-1");
    // A plain accept's runner is still the server's own.
    const { path } = await admin.call("proposal/create", { run: "claims", tool: "sh", command: "echo who runs me" });
    const facts = await factsOf("claims", path);
    expect(facts.defaultRunner).not.toBe("ci-1");
    if (facts.defaultRunner !== null) expect(facts.runnerClaim).toMatchObject({ own: true, attachedBy: null });

    // Attached as what it may be (not the default), its sandbox is shown as its claim, with the principal that attached it.
    await expect(runner.call("runner/attach", { name: "ci-1", backend: "local", sandbox: claim })).resolves.toMatchObject({ default: false });
    const named = await admin.call("proposal/create", { run: "claims", tool: "sh", command: "echo on ci", runner: "ci-1", sandbox: "workspace-write" });
    const shown = await factsOf("claims", named.path);
    expect(shown.runnerClaim).toEqual({ own: false, attachedBy: "ci", attachedAs: "runner", modes: ["read-only", "workspace-write", "full"], network: "own" });
    expect(factsText(shown)).toMatch(/runner +ci-1 \(attached by runner "ci", claims read-only, workspace-write, full, network own\)/);
  });

  it("a person (for its project) or an admin makes a runner the default; the next proposal shows whose claim it goes to", async () => {
    const person = await as(await token("pat", "person", ["alpha"]));
    await expect(
      person.call("runner/attach", {
        name: "pats-box",
        backend: "local",
        default: true,
        sandbox: { kind: "none", readOnly: false, detail: "none", modes: ["full"] },
      }),
    ).resolves.toMatchObject({ default: true });
    const { path } = await admin.call("proposal/create", { run: "claims", tool: "sh", command: "echo default", sandbox: "full" });
    const facts = await factsOf("claims", path);
    expect(facts.defaultRunner).toBe("pats-box");
    expect(factsText(facts)).toMatch(/runner +default \(pats-box; attached by person "pat", claims full, network not said\)/);
  });

  it("a runner name taken by another principal once its runner went is not the runner shown: the accept is refused, the proposal shown again", async () => {
    const first = await as(await token("builder", "runner", ["alpha"]));
    await first.call("runner/attach", { name: "build-box", backend: "local", sandbox: claim });
    const { path } = await admin.call("proposal/create", {
      run: "claims",
      tool: "sh",
      command: "echo for builder",
      runner: "build-box",
      sandbox: "workspace-write",
    });
    const before = await factsOf("claims", path);
    expect(before.runnerClaim).toMatchObject({ attachedBy: "builder", attachedAs: "runner" });
    // The runner goes with no work (its name is not held), and another principal's runner takes the name: only an
    // admin's may (a runner name is its first principal's), and it is still not the runner the person was shown.
    first.close();
    await eventually(async () => !(await admin.call("runner/list", {})).runners.some((r) => r.name === "build-box"), 10_000, "build-box detached");
    const squatter = await as(await token("squatter", "admin"));
    await squatter.call("runner/attach", { name: "build-box", backend: "local", sandbox: claim });
    const announced = new Promise<{ path: string }>((resolve) => {
      const off = admin.on("run/proposal", (p) => {
        if (p.path !== path) return;
        off();
        resolve(p);
      });
    });
    // An accept that names no revision is refused too (the runner is not the one shown), and the proposal is
    // recorded again and announced; one on the revision shown before is then refused as stale. Nothing runs.
    const shownRevision = before.factsRevision ?? 1;
    await expect(admin.call("run/resolve", { run: "claims", path, decision: "accept" })).rejects.toMatchObject({
      data: { code: "FACTS_CHANGED", factsRevision: shownRevision + 1 },
      message: expect.stringContaining('attached by admin "squatter"'),
    });
    expect(await announced).toMatchObject({ path });
    await expect(admin.call("run/resolve", { run: "claims", path, decision: "accept", facts: shownRevision })).rejects.toMatchObject({
      data: { code: "FACTS_CHANGED" },
    });
    const after = await factsOf("claims", path);
    expect(after.runnerClaim).toMatchObject({ attachedBy: "squatter", attachedAs: "admin" });
    expect(after.factsRevision).toBe(shownRevision + 1);
    expect(factsText(after)).toMatch(/attached by admin "squatter"/);
    expect((await admin.call("entry/get", { run: "claims", path, limit: 1 })).producer?.state).toBe("proposed");
    // Decided on the facts shown now, it goes to the runner shown now.
    await expect(admin.call("run/resolve", { run: "claims", path, decision: "accept", facts: after.factsRevision })).resolves.toMatchObject({
      runner: "build-box",
    });
  });

  it("every proposal's facts carry the absolute root of its project", async () => {
    const { path } = await admin.call("proposal/create", { run: "claims", tool: "sh", command: "pwd" });
    const facts = await factsOf("claims", path);
    expect(facts.root).toBe(ts.root);
    expect(factsText(facts)).toContain(`cwd         ${ts.root} (the project root)`);
  });

  it("a scoped credential joins its projects but creates none at a root of its choosing; only an admin creates", async () => {
    const scoped = await as(await token("delta-person", "person", ["delta", "beta"]), null);
    const etc = tempDir("spool-chosen-root-");
    await expect(scoped.initialize("delta", { root: etc })).rejects.toMatchObject({
      data: { code: "FORBIDDEN", role: "admin", held: "person" },
      message: expect.stringContaining("needs the admin role"),
    });
    // Nor at another project's root under its own name, nor with create left to the default.
    await expect(scoped.initialize("delta", { root: ts.root })).rejects.toMatchObject({ data: { code: "FORBIDDEN", role: "admin" } });
    // A name alone never makes a project, whoever asks: it is not found, and the projects the caller may join are named.
    await expect(scoped.initialize("delta")).rejects.toMatchObject({ data: { code: "NOT_FOUND", project: "delta", projects: ["beta"] } });
    expect((await admin.call("project/list", {})).projects.map((p) => p.name)).not.toContain("delta");
    // An unscoped person cannot either.
    const unscoped = await as(await token("free-person", "person"), null);
    await expect(unscoped.initialize("epsilon", { root: etc })).rejects.toMatchObject({ data: { code: "FORBIDDEN", role: "admin" } });
    // It joins a project that exists.
    await expect(scoped.initialize("beta")).resolves.toMatchObject({ project: { name: "beta" } });
    // The admin creates one, and then the scoped credential may join it.
    const creator = await ts.client();
    await creator.initialize("delta", { root: etc });
    await expect((await as(await token("delta-only", "person", ["delta"]), null)).initialize("delta")).resolves.toMatchObject({ project: { name: "delta" } });
  });

  it("a refusal names no project the caller did not name: found by root, another project stays unnamed", async () => {
    const scoped = await as(await token("gamma-only", "person", ["gamma"]), null);
    const error = await scoped.initialize(undefined, { root: ts.root }).then(
      () => null,
      (e: { message: string; data: Record<string, unknown> }) => e,
    );
    expect(error?.data).toMatchObject({ code: "FORBIDDEN" });
    expect(error?.data.project).toBeUndefined();
    expect(error?.message).not.toMatch(/alpha|beta/);
    // A root where there is no project is the same refusal: it cannot tell the two apart.
    const none = await scoped.initialize(undefined, { root: tempDir("spool-empty-root-") }).then(
      () => null,
      (e: { data: Record<string, unknown> }) => e,
    );
    expect(none?.data).toMatchObject({ code: "FORBIDDEN" });
  });

  it("a viewer's refusal to decide names the person role; an agent's withdrawal is the agent's", async () => {
    const { path } = await admin.call("proposal/create", { run: "claims", tool: "sh", command: "echo decide me" });
    const viewer = await as(await token("vic", "viewer", ["alpha"]));
    await expect(viewer.call("run/resolve", { run: "claims", path, decision: "accept" })).rejects.toMatchObject({
      data: { code: "FORBIDDEN", role: "person", held: "viewer" },
      message: expect.stringContaining("needs the person role"),
    });
    await expect(viewer.call("run/resolve", { run: "claims", path, decision: "reject" })).rejects.toMatchObject({
      data: { code: "FORBIDDEN", role: "agent", held: "viewer" },
    });
  });

  it("/metrics shows a scoped credential only its projects' series", async () => {
    await (await ts.clientIn("beta")).call("run/create", { alias: "secret" });
    const url = `http://127.0.0.1:${ts.server.port}/metrics`;
    const read = async (bearer: string) => (await fetch(url, { headers: { Authorization: `Bearer ${bearer}` } })).text();
    const all = await read(ts.server.token);
    expect(all).toMatch(/spool_proposals_pending\{project="beta"\} 0/);
    expect(all).toMatch(/spool_proposals_pending\{project="alpha"\} \d+/);
    const scoped = await read(await token("alpha-viewer", "viewer", ["alpha"]));
    expect(scoped).toMatch(/spool_proposals_pending\{project="alpha"\} \d+/);
    expect(scoped).not.toContain('project="beta"');
    expect(scoped).not.toContain("delta");
    // Spool's server-wide sums are every project's: not shown to it. The process's own figures are.
    expect(scoped).not.toContain("spool_producers");
    expect(scoped).toContain("process_cpu_user_seconds_total");
  });
});
