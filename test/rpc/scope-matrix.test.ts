import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ROLES, type Role, roleAllows } from "../../src/protocol/roles.js";
import { PROTOCOL_VERSION } from "../../src/version.js";
import { pair } from "../helpers/devices.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

// The role × scope matrix, generated from the discovery document of a real `spool serve`: every method it lists,
// called by every role, with a credential scoped inside the target project and one scoped outside it. A method
// added to the protocol is in the walk without a line here; its params are made from their names.

const TARGET = "zz-target";
const SECRET = "zz-secret-marker";

interface DiscoveredMethod {
  name: string;
  params: { name: string; required?: boolean }[];
  "x-role": Role;
  "x-requires-initialize": boolean;
  "x-own-runs"?: boolean;
}

type Outcome = { ok: true; result: unknown } | { ok: false; code: string | undefined; message: string };

describe("role × scope matrix", () => {
  let serve: ServeProcess;
  let home: string;
  let root: string;
  let admin: SpoolClient;
  let pendingPath: string;
  /** A device paired by a principal scoped to the target project, named with the secret marker. */
  let targetDevice: string;
  const tokens = {} as Record<"inside" | "outside", Record<Role, string>>;
  const open: SpoolClient[] = [];

  /**
   * A value for a param, by its name: the target project's things (what a call outside its scope must not reach). Walked
   * from outside, `all` asks for everything a call may list (device/list's every principal's devices).
   */
  const paramValue = (method: string, param: string, outside: boolean): unknown =>
    ({
      all: outside ? true : undefined,
      device: targetDevice,
      run: "zz-run",
      path: pendingPath,
      project: TARGET,
      projects: [TARGET],
      name: "zz-name",
      // initialize's role lowers the connection's: not asked for here.
      role: method === "initialize" ? undefined : "viewer",
      url: "http://127.0.0.1:9/zz",
      tool: "sh",
      command: "echo zz",
      decision: "reject",
      protocolVersion: PROTOCOL_VERSION,
      channel: 1,
      chunk: "x",
      data: "x",
      backend: "local",
      signal: "TERM",
      cols: 80,
      rows: 24,
      subscription: "zz",
      prompt: "zz",
      alias: method === "run/create" ? "zz-new" : undefined,
    })[param];

  const paramsFor = (m: DiscoveredMethod, outside: boolean) =>
    Object.fromEntries(m.params.map((p) => [p.name, paramValue(m.name, p.name, outside)]).filter(([, v]) => v !== undefined));

  async function call(token: string, project: string | null, m: DiscoveredMethod, outside = false): Promise<Outcome> {
    const c = await SpoolClient.connect(serve.url, { token });
    open.push(c);
    try {
      if (project !== null && m.name !== "initialize") await c.initialize(project);
      // Names come from the discovery document, not the typed table: a method added later is called all the same.
      const untyped = c.call.bind(c) as unknown as (method: string, params: object) => Promise<unknown>;
      return { ok: true, result: await untyped(m.name, paramsFor(m, outside)) };
    } catch (error) {
      const e = error as { data?: { code?: string }; message: string };
      return { ok: false, code: e.data?.code, message: e.message };
    } finally {
      c.close();
    }
  }

  /** What the target project holds that a call could change: counted. */
  async function targetState(): Promise<string> {
    const { events } = await admin.call("audit/list", { project: TARGET });
    const principals = (await admin.call("token/list", { revoked: true })).principals.filter((p) => p.projects?.includes(TARGET));
    const targets = (await admin.call("notify/list", {})).targets.filter((t) => t.projects?.includes(TARGET));
    const runs = (await admin.call("run/list", {})).runs.map((r) => [r.alias, r.status]);
    const pending = await admin.call("proposal/list", {});
    const devices = (await admin.call("device/list", { all: true })).devices.filter((d) => d.principal === "zz-phone");
    return JSON.stringify({
      devices: devices.map((d) => d.id),
      acts: events.filter((e) => !["decision", "proposal"].includes(e.action) || e.principal !== "admin").length,
      principals: principals.map((p) => [p.name, p.revokedAt]),
      targets: targets.map((t) => t.name),
      runs,
      pending: pending.proposals.length,
    });
  }

  beforeAll(async () => {
    home = tempDir();
    root = tempDir("spool-root-");
    for (const p of [TARGET, "zz-other"]) mkdirSync(join(root, p));
    serve = await spawnServe(["--port", String(await freePort()), "--home", home, "--no-local-runner"]);
    const homeToken = readFileSync(join(home, "token"), "utf8").trim();
    admin = await SpoolClient.connect(serve.url, { token: homeToken });
    open.push(admin);
    const other = await SpoolClient.connect(serve.url, { token: homeToken });
    open.push(other);
    await other.initialize("zz-other", { root: join(root, "zz-other") });
    await admin.initialize(TARGET, { root: join(root, TARGET) });
    await admin.call("run/create", { alias: "zz-run" });
    ({ path: pendingPath } = await admin.call("proposal/create", { run: "zz-run", tool: "sh", command: `echo ${SECRET}`, env: { K: SECRET } }));
    await admin.call("token/create", { name: "zz-name", role: "viewer", projects: [TARGET] });
    await admin.call("notify/add", { name: "zz-name", url: "http://127.0.0.1:9/zz", projects: [TARGET] });
    const phone = (await admin.call("token/create", { name: "zz-phone", role: "viewer", projects: [TARGET] })).token;
    targetDevice = (await pair(Number(new URL(serve.url).port), phone, { name: SECRET })).id;
    for (const [scope, projects] of [
      ["inside", [TARGET]],
      ["outside", ["zz-other"]],
    ] as const) {
      tokens[scope] = {} as Record<Role, string>;
      for (const role of ROLES) tokens[scope][role] = (await admin.call("token/create", { name: `${scope}-${role}`, role, projects: [...projects] })).token;
    }
  }, 90_000);
  afterAll(async () => {
    for (const c of open) if (!c.closed) c.close();
    await serve?.stop();
  });

  it("outside the target project: every method × every role is refused or answers nothing of it, and changes nothing in it", async () => {
    const { methods } = (await admin.call("rpc.discover", {})) as unknown as { methods: DiscoveredMethod[] };
    expect(methods.length).toBeGreaterThan(30);
    const before = await targetState();
    const walked: string[] = [];
    for (const m of methods) {
      expect(ROLES, `${m.name}: x-role`).toContain(m["x-role"]);
      for (const role of ROLES) {
        const outcome = await call(tokens.outside[role], m["x-requires-initialize"] || m.name === "initialize" ? "zz-other" : null, m, true);
        const where = `${m.name} as ${role} scoped outside`;
        if (!roleAllows(role, m["x-role"])) expect(outcome, where).toMatchObject({ ok: false, code: "FORBIDDEN" });
        if (outcome.ok) {
          expect(JSON.stringify(outcome.result), where).not.toContain(TARGET);
          expect(JSON.stringify(outcome.result), where).not.toContain(SECRET);
        } else {
          expect(outcome.message, where).not.toContain(SECRET);
        }
        walked.push(where);
      }
    }
    expect(await targetState()).toBe(before);
    expect(before).toContain(targetDevice);
    expect(walked.length).toBe(methods.length * ROLES.length);
  }, 120_000);

  it("inside the target project: every method × every role below its x-role is FORBIDDEN naming it, every other gets past role and scope", async () => {
    const { methods } = (await admin.call("rpc.discover", {})) as unknown as { methods: DiscoveredMethod[] };
    const answered: string[] = [];
    for (const m of methods) {
      for (const role of ROLES) {
        const outcome = await call(tokens.inside[role], m["x-requires-initialize"] ? TARGET : null, m);
        const where = `${m.name} as ${role} scoped inside`;
        // The target's run is the admin's: below person, a method on one's own runs is refused it.
        if (!roleAllows(role, m["x-role"]) || (m["x-own-runs"] && !roleAllows(role, "person"))) {
          expect(outcome, where).toMatchObject({ ok: false, code: "FORBIDDEN" });
          continue;
        }
        expect(outcome.ok ? "ok" : outcome.code, `${where}: ${outcome.ok ? "" : outcome.message}`).not.toBe("FORBIDDEN");
        if (outcome.ok) answered.push(m.name);
      }
    }
    // A scoped admin's own management calls answer with the target's things.
    for (const name of ["token/list", "notify/list", "audit/list", "run/list", "proposal/list"]) expect(answered, name).toContain(name);
  }, 120_000);
});
