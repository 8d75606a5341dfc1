import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nameCandidates, PROJECT_NAME, projectNameFrom } from "../../src/core/project-name.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

describe("project names derived from directory names", () => {
  it.each([
    ["My App", "My-App"],
    ["ünï", "uni"],
    ["日本語", "project"],
    ["...hidden", "hidden"],
    ["a  b__c", "a-b__c"],
    ["-x-", "x"],
    ["x".repeat(300), "x".repeat(100)],
  ])("%s → %s", (dir, name) => {
    expect(projectNameFrom(dir)).toBe(name);
    expect(name).toMatch(PROJECT_NAME);
  });

  it("candidates add -N suffixes", () => {
    expect(nameCandidates("app", 3)).toEqual(["app", "app-2", "app-3"]);
  });
});

describe("projects found by root", () => {
  let ts: TestServer;
  let base: string;
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    base = tempDir("spool-roots-");
  });
  afterAll(() => ts.stop());

  const dir = (...parts: string[]) => {
    const path = join(base, ...parts);
    mkdirSync(path, { recursive: true });
    return path;
  };

  it("two directories with the same base name are two projects", async () => {
    const a = await (await ts.client()).initialize(undefined, { root: dir("a", "app") });
    const b = await (await ts.client()).initialize(undefined, { root: dir("b", "app") });
    expect(a.project).toEqual({ name: "app", root: join(base, "a", "app") });
    expect(b.project).toEqual({ name: "app-2", root: join(base, "b", "app") });
    expect(a.projectId).not.toBe(b.projectId);
    // The same root again is the same project.
    const again = await (await ts.client()).initialize(undefined, { root: `${join(base, "b", "app")}/` });
    expect(again.projectId).toBe(b.projectId);
  });

  it("a directory name that is no valid project name still gets a project", async () => {
    const joined = await (await ts.client()).initialize(undefined, { root: dir("My App") });
    expect(joined.project.name).toBe("My-App");
    const accents = await (await ts.client()).initialize(undefined, { root: dir("ünï") });
    expect(accents.project.name).toBe("uni");
  });

  it("create: false finds an existing project and never creates one", async () => {
    const root = dir("readonly");
    const client = await ts.client();
    await expect(client.initialize(undefined, { root, create: false })).rejects.toMatchObject({ errorCode: "NOT_FOUND" });
    await expect(client.initialize("never-made", { create: false })).rejects.toMatchObject({ errorCode: "NOT_FOUND" });
    // Nothing was created: the same connection can still join, and the name is free.
    const made = await client.initialize(undefined, { root });
    expect(made.project.name).toBe("readonly");
    const found = await (await ts.client()).initialize(undefined, { root, create: false });
    expect(found.projectId).toBe(made.projectId);
  });

  it("a name with another root is a conflict that reveals nothing of the other project; a relative root or neither name nor root is refused", async () => {
    const other = dir("named-secret-root");
    await (await ts.client()).initialize("named", { root: other });
    const refused = await (await ts.client()).initialize("named", { root: dir("elsewhere") }).then(
      () => expect.fail("joined a project named like another with another root"),
      (error: { errorCode: string; message: string; data: unknown }) => error,
    );
    expect(refused.errorCode).toBe("CONFLICT");
    expect(refused.message).toMatch(/name "named" is taken/);
    expect(refused.data).toEqual({ code: "CONFLICT", project: "named" });
    expect(JSON.stringify({ message: refused.message, data: refused.data })).not.toContain("named-secret-root");
    await expect((await ts.client()).initialize(undefined, { root: "relative/dir" })).rejects.toMatchObject({ errorCode: "INVALID_PARAMS" });
    await expect((await ts.client()).call("initialize", { protocolVersion: "1.0" })).rejects.toMatchObject({ errorCode: "INVALID_PARAMS" });
    await expect((await ts.client()).initialize("My App", { root: dir("x") })).rejects.toMatchObject({ errorCode: "INVALID_PARAMS" });
  });
});

describe("proposal/list", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
  });
  afterAll(() => ts.stop());

  it("lists pending proposals of the project, by run, a page at a time; decided ones and other projects' are not listed", async () => {
    const person = await ts.clientIn("pending");
    const other = await ts.clientIn("pending-other");
    await person.call("run/create", { alias: "r1" });
    await person.call("run/create", { alias: "r2" });
    await other.call("run/create", { alias: "r1" });
    const made: string[] = [];
    for (const [run, command] of [
      ["r1", "make a"],
      ["r2", "make b"],
      ["r1", "make c"],
    ] as const) {
      made.push((await person.call("proposal/create", { run, tool: "sh", command, cwd: "sub", env: { A: "1" } })).path);
    }
    await other.call("proposal/create", { run: "r1", tool: "sh", command: "elsewhere" });
    await person.call("run/resolve", { run: "r1", path: made[2]!, decision: "reject", reason: "no" });

    const all = await person.call("proposal/list", {});
    expect(all.proposals.map((p) => [p.run, p.command])).toEqual([
      ["r1", "make a"],
      ["r2", "make b"],
    ]);
    expect(all.proposals[0]!).toMatchObject({ tool: "sh", attributes: { cwd: "sub", env: { A: "1" } } });
    expect(all.proposals[0]!.createdAt).toBeGreaterThan(0);
    expect(all.next).toBeNull();

    const first = await person.call("proposal/list", { limit: 1 });
    expect(first.proposals.map((p) => p.command)).toEqual(["make a"]);
    const second = await person.call("proposal/list", { limit: 1, after: first.next ?? undefined });
    expect(second.proposals.map((p) => p.command)).toEqual(["make b"]);
    expect(second.next).toBeNull();

    const byRun = await person.call("proposal/list", { run: "r2" });
    expect(byRun.proposals.map((p) => p.command)).toEqual(["make b"]);
    await expect(person.call("proposal/list", { run: "nope" })).rejects.toMatchObject({ errorCode: "NOT_FOUND" });
    await expect(person.call("proposal/list", { limit: 1000 })).rejects.toMatchObject({ errorCode: "INVALID_PARAMS" });
  });
});
