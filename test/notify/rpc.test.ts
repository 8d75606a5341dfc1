import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import type { PostgresStore } from "../../src/store/postgres/postgres.js";
import { sqliteOf, startTestServer, type TestServer } from "../helpers/server.js";

// The admin-only RPCs under `spool notify` and `spool audit`: bad input gets a typed error and changes nothing,
// anyone but an admin is refused, and the audit table refuses to be changed.

describe("notify/* and audit/list", () => {
  let ts: TestServer;
  let admin: SpoolClient;
  let person: SpoolClient;

  beforeAll(async () => {
    ts = await startTestServer();
    admin = await ts.clientIn("alpha");
    const { token } = await admin.call("token/create", { name: "bob", role: "person" });
    person = await SpoolClient.connect(ts.server.url, { token });
    await person.initialize("alpha");
  });
  afterAll(async () => {
    person.close();
    await ts.stop();
  });

  const state = async () => ({ targets: (await admin.call("notify/list", {})).targets, audit: (await admin.call("audit/list", {})).events.length });

  it("refuses bad input with INVALID_PARAMS naming the field, a taken name with CONFLICT, an unknown one with NOT_FOUND, and changes nothing", async () => {
    await admin.call("notify/add", { name: "kept", url: "http://127.0.0.1:9/hook" });
    const before = await state();
    const invalid: [Record<string, unknown>, string][] = [
      [{ name: "bad name", url: "http://127.0.0.1:9/" }, "name"],
      [{ name: "x", url: "ftp://127.0.0.1/" }, "url"],
      [{ name: "x", url: "not a url" }, "url"],
      [{ name: "x", url: "http://user:pw@127.0.0.1/" }, "url"],
      [{ name: "x", url: "http://127.0.0.1/", events: ["nope"] }, "events.0"],
      [{ name: "x", url: "http://127.0.0.1/", events: [] }, "events"],
      [{ name: "x", url: "http://127.0.0.1/", format: "xml" }, "format"],
      [{ name: "x", url: "http://127.0.0.1/", projects: ["../etc"] }, "projects.0"],
    ];
    for (const [params, field] of invalid) {
      await expect(admin.call("notify/add", params as never), JSON.stringify(params)).rejects.toMatchObject({
        data: { code: "INVALID_PARAMS", issues: expect.arrayContaining([expect.objectContaining({ path: field })]) },
      });
    }
    await expect(admin.call("notify/add", { name: "x", url: "http://127.0.0.1/", secret: "mine" } as never)).rejects.toMatchObject({
      data: { code: "INVALID_PARAMS" },
    });
    await expect(admin.call("notify/add", { name: "kept", url: "http://127.0.0.1:9/other" })).rejects.toMatchObject({ data: { code: "CONFLICT" } });
    await expect(admin.call("notify/remove", { name: "absent" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    await expect(admin.call("notify/test", { name: "absent" })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    await expect(admin.call("audit/list", { since: -1 })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    await expect(admin.call("audit/list", { limit: 5000 })).rejects.toMatchObject({ data: { code: "INVALID_PARAMS" } });
    expect(await state()).toEqual(before);
  });

  it("refuses every notify and audit method to a person, with FORBIDDEN naming admin, and changes nothing", async () => {
    const before = await state();
    for (const [method, params] of [
      ["notify/add", { name: "sneaky", url: "http://127.0.0.1:9/" }],
      ["notify/list", {}],
      ["notify/remove", { name: "kept" }],
      ["notify/test", { name: "kept" }],
      ["audit/list", {}],
    ] as const) {
      await expect(person.call(method, params as never), method).rejects.toMatchObject({ data: { code: "FORBIDDEN", role: "admin", held: "person" } });
    }
    expect(await state()).toEqual(before);
  });

  it("records a page's sign-in with its principal, and a token's creation", async () => {
    const base = ts.server.url.replace(/^ws:/, "http:");
    const { token } = await admin.call("token/create", { name: "carol", role: "viewer" });
    const minted = await fetch(`${base}session/code`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
    const { code } = (await minted.json()) as { code: string };
    const signedIn = await fetch(`${base}session`, {
      method: "POST",
      headers: { Origin: base.replace(/\/$/, ""), "Content-Type": "application/json" },
      body: JSON.stringify({ code }),
    });
    expect(signedIn.status).toBe(200);
    const { events } = await admin.call("audit/list", {});
    expect(events.find((e) => e.action === "token/create" && e.detail.name === "carol")).toMatchObject({ principal: "admin", detail: { role: "viewer" } });
    expect(events.find((e) => e.action === "sign-in")).toMatchObject({ principal: "carol", client: "spool-web", detail: { address: "127.0.0.1" } });
  });

  it("records adds and removes in the audit trail, which the database refuses to change", async () => {
    await admin.call("notify/add", { name: "gone", url: "http://127.0.0.1:9/", events: ["expired"], projects: ["alpha"] });
    await admin.call("notify/remove", { name: "gone" });
    const { events } = await admin.call("audit/list", { project: undefined });
    const notify = events.filter((e) => (e.action === "notify/add" || e.action === "notify/remove") && e.detail.name === "gone");
    expect(notify.map((e) => [e.action, e.principal])).toEqual([
      ["notify/add", "admin"],
      ["notify/remove", "admin"],
    ]);
    expect(notify[0]!.detail).toMatchObject({ events: ["expired"], projects: ["alpha"] });
    if (ts.server.store.kind === "sqlite") {
      const db = sqliteOf(ts.server);
      expect(() => db.prepare("UPDATE audit SET principal = 'nobody'").run()).toThrow(/append-only/);
      expect(() => db.prepare("DELETE FROM audit").run()).toThrow(/append-only/);
    } else {
      const { pool } = ts.server.store as PostgresStore;
      await expect(pool.query("UPDATE audit SET principal = 'nobody'")).rejects.toThrow(/append-only/);
      await expect(pool.query("DELETE FROM audit")).rejects.toThrow(/append-only/);
    }
    expect((await admin.call("audit/list", {})).events.length).toBeGreaterThanOrEqual(events.length);
  });
});
