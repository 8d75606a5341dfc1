import { describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { runCli } from "../helpers/process.js";
import { type Message, MODERN_META, type RawClient } from "./raw-client.js";
import { stdioFixture } from "./stdio-fixture.js";

/*
 * `spool mcp`'s 2026-07-28 side as a real process: the Spool connection it keeps per client name (four at most,
 * spool mcp being one principal), which one goes when a fifth name comes, and a request naming another revision
 * after the first request pinned this one.
 */

const text = (result: Message): string => (result?.content ?? []).map((c: { text?: string }) => c.text ?? "").join("\n");

describe("spool mcp's kept connections over stdio", () => {
  const fixture = stdioFixture("spool-mcp-stdio-kept-");
  const { env } = fixture;
  const spawn = () => fixture.spawn();
  /** A person at the web view, in the project; `proposed` and `resolved` gather what it is told from now on. */
  const person = async () => {
    const web = await fixture.person();
    const proposed: { run: string; path: string; command: string }[] = [];
    const resolved: { run: string; path: string; decision: string }[] = [];
    web.on("run/proposal", (p) => void proposed.push(p));
    web.on("run/resolved", (r) => void resolved.push(r));
    return { web, proposed, resolved };
  };
  /** A run_command of client `client` that waits for a person (spool mcp's role is agent's): its id once proposed. */
  const waiting = async (raw: RawClient, web: SpoolClient, client: string, command: string) => {
    const proposal = web.next("run/proposal", (p) => p.command === command, 20_000);
    const id = raw.request("tools/call", raw.modernParams({ name: "run_command", arguments: { command } }, { client }));
    return { id, proposal: await proposal };
  };
  const approve = async (p: { run: string; path: string }) => {
    const done = await runCli(["approve", p.run, p.path], env(), fixture.project, 30_000);
    expect(done.code, done.err).toBe(0);
  };

  it("after the revision is pinned, a request naming another one is -32022 naming the supported revisions, and nothing is served or proposed", async () => {
    const raw = spawn();
    const { web, proposed } = await person();
    // The first request that is no server/discover pins 2026-07-28 for the connection.
    expect((await raw.modern("tools/list", {})).result.tools.length).toBeGreaterThan(0);
    const other = { meta: { [MODERN_META.version]: "2099-01-01" } };
    const requests: [string, object][] = [
      ["tools/list", {}],
      ["resources/list", {}],
      ["tools/call", { name: "run_command", arguments: { command: "echo never-proposed" } }],
      ["subscriptions/listen", { notifications: { resourcesListChanged: true } }],
    ];
    for (const [method, params] of requests) {
      const answer = await raw.modern(method, params, other);
      expect(answer.result, method).toBeUndefined();
      expect(answer.error, method).toMatchObject({ code: -32022, data: { supported: ["2026-07-28"], requested: "2099-01-01" } });
    }
    const notAVersion = await raw.modern("tools/list", {}, { meta: { [MODERN_META.version]: 42 } });
    expect(notAVersion.error).toMatchObject({ code: -32602, data: { envelope: { key: MODERN_META.version } } });

    // The same connection still serves 2026-07-28, and the refused call proposed nothing.
    await waiting(raw, web, "raw-modern-agent", "echo proposed-after");
    expect(proposed.map((p) => p.command)).toEqual(["echo proposed-after"]);
    expect(raw.messages.filter((m) => m.method === "notifications/subscriptions/acknowledged")).toEqual([]);
  }, 60_000);

  it("a fifth client name never closes a kept connection whose call waits for a person: the least recently used idle one goes, and the call runs once approved", async () => {
    const raw = spawn();
    const { web, resolved } = await person();
    const a = await waiting(raw, web, "client-a", "echo kept-while-waiting");
    for (const client of ["client-b", "client-c", "client-d"]) expect((await raw.modern("resources/list", {}, { client })).error).toBeUndefined();
    // client-a's connection is the least recently used one: client-e's request takes client-b's instead.
    const e = await raw.modern("resources/list", {}, { client: "client-e" });
    expect(e.error).toBeUndefined();
    expect(e.result.resultType).toBe("complete");
    // client-b comes back (a fresh connection, in client-c's place): client-a's call still waits, on the connection
    // and run it was made on (a fresh one would list nothing).
    expect((await raw.modern("resources/list", {}, { client: "client-b" })).error).toBeUndefined();
    const listed = await raw.modern("tools/call", { name: "list_commands", arguments: { state: "pending" } }, { client: "client-a" });
    expect(text(listed.result)).toContain("echo kept-while-waiting");
    expect(raw.messages.filter((m) => m.id === a.id)).toEqual([]);
    expect(resolved).toEqual([]);

    await approve(a.proposal);
    const answer = await raw.next((m) => m.id === a.id && m.method === undefined, 0, 30_000);
    expect(answer.result?.resultType).toBe("complete");
    expect(answer.result.isError).toBeFalsy();
    expect(text(answer.result)).toContain("kept-while-waiting");
    expect(text(answer.result)).toContain("exit_code: 0");
  }, 90_000);

  it("with every kept connection busy (calls waiting, a listen open), a fifth client name's request is a JSON-RPC error that cuts nothing; once a call ends, it is served", async () => {
    const raw = spawn();
    const { web, resolved } = await person();
    const calls: Awaited<ReturnType<typeof waiting>>[] = [];
    for (const client of ["busy-a", "busy-b", "busy-c"]) calls.push(await waiting(raw, web, client, `echo busy-${client}`));
    const listen = raw.request("subscriptions/listen", raw.modernParams({ notifications: { resourcesListChanged: true } }, { client: "busy-d" }));
    await raw.next((m) => m.method === "notifications/subscriptions/acknowledged" && m.params._meta[MODERN_META.subscription] === listen);

    const refused = await raw.modern("resources/list", {}, { client: "busy-e" });
    expect(refused.result).toBeUndefined();
    expect(refused.error).toEqual({
      code: -32031,
      message:
        "spool mcp and the credentials of its principal hold 4 kept MCP connections, the most for one principal (maxPerPrincipal 4), each with a request under way; retry when one ends",
    });
    // A call would be refused alike, proposing nothing.
    const refusedCall = await raw.modern("tools/call", { name: "run_command", arguments: { command: "echo busy-e" } }, { client: "busy-e" });
    expect(refusedCall.error?.code).toBe(-32031);
    const refusedListen = await raw.modern("subscriptions/listen", { notifications: { resourcesListChanged: true } }, { client: "busy-e" });
    expect(refusedListen.error).toEqual(refused.error);
    expect(resolved).toEqual([]);
    for (const call of calls) expect(raw.messages.filter((m) => m.id === call.id)).toEqual([]);
    expect(raw.messages.filter((m) => m.id === listen)).toEqual([]);

    // busy-a's call ends: its connection is idle, and busy-e's next request is served in its place.
    await approve(calls[0]!.proposal);
    const first = await raw.next((m) => m.id === calls[0]!.id && m.method === undefined, 0, 30_000);
    expect(text(first.result)).toContain("busy-busy-a");
    const served = await raw.modern("resources/list", {}, { client: "busy-e" });
    expect(served.error).toBeUndefined();
    expect(resolved.map((r) => r.path)).toEqual([calls[0]!.proposal.path]);
  }, 90_000);
});
