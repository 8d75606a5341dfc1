import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";
import { type Message, MODERN_META } from "./raw-client.js";
import { stdioFixture } from "./stdio-fixture.js";

/*
 * `spool mcp` as a real process driven with raw MCP 2026-07-28 lines on its stdin: no initialize, each request
 * carrying its `_meta`; approvals as multi round-trip requests, the tasks extension, subscriptions/listen. The
 * 2025-11-25 path (the SDK's Client over stdio) is mcp.test.ts's and raw.test.ts's.
 */

const TASKS = "io.modelcontextprotocol/tasks";
const elicits = { elicitation: { form: {} } };
const text = (result: Message): string => (result?.content ?? []).map((c: { text?: string }) => c.text ?? "").join("\n");

describe("spool mcp speaks MCP 2026-07-28 over stdio", () => {
  const fixture = stdioFixture("spool-mcp-stdio-modern-");
  const { env, person } = fixture;
  const spawn = (args: string[] = []) => fixture.spawn(args);

  it("server/discover answers without initialize; bad input gets the revision's errors and changes nothing: a 2025-11-25 initialize still works after", async () => {
    const raw = spawn();
    const discovered = await raw.modern("server/discover", {});
    expect(discovered.result).toMatchObject({
      resultType: "complete",
      supportedVersions: ["2026-07-28"],
      capabilities: { tools: {}, resources: { subscribe: true }, extensions: { [TASKS]: {} } },
    });
    expect(discovered.result._meta[MODERN_META.server].name).toBe("spool");

    const unknown = await raw.modern("tools/list", {}, { meta: { [MODERN_META.version]: "2099-01-01" } });
    expect(unknown.error).toMatchObject({ code: -32022, data: { supported: ["2026-07-28"], requested: "2099-01-01" } });
    const noTasks = await raw.modern("tasks/get", { taskId: "whatever" });
    expect(noTasks.error.code).toBe(-32021);
    expect(noTasks.error.data.requiredCapabilities).toEqual({ extensions: { [TASKS]: {} } });
    const noCapabilities = await raw.modern("tools/list", {}, { meta: { [MODERN_META.capabilities]: undefined } });
    expect(noCapabilities.error.code).toBe(-32602);
    // Neither revision: no _meta, and no initialize before it.
    const neither = await raw.call("tools/list", {});
    expect(neither.error.code).toBe(-32602);
    expect(neither.error.message).toMatch(/initialize/);

    const listed = await raw.modern("tools/list", {});
    expect(listed.result.tools.map((t: { name: string }) => t.name)).toContain("run_command");
    expect(listed.result.ttlMs).toBe(3_600_000);
    // The same process still takes a 2025-11-25 client.
    const init = await raw.initialize();
    expect(init.result.serverInfo.name).toBe("spool");
    expect(init.result.protocolVersion).toBe("2025-06-18");
    expect(init.result.capabilities).toHaveProperty("tasks");
    expect(raw.messages.filter((m) => m.method !== undefined && m.method !== "ping")).toEqual([]);
  }, 60_000);

  it("docs/mcp.md's 2026-07-28 line for spool mcp answers server/discover", async () => {
    const doc = readFileSync(new URL("../../docs/mcp.md", import.meta.url), "utf8");
    const block = /```sh mcp-stdio-2026\n([\s\S]*?)```/.exec(doc)![1]!;
    expect(block).toContain("| spool mcp --project .");
    const line = /echo '([^']+)'/.exec(block)![1]!;
    const raw = spawn();
    raw.cli.write(`${line}\n`);
    const answer = await raw.next((m) => m.id === 1);
    expect(answer.result).toMatchObject({ supportedVersions: ["2026-07-28"], capabilities: { extensions: { [TASKS]: {} } } });
  });

  it("run_command of a person's client that elicits: input_required, accept runs it once, a replayed requestState is refused, decline rejects", async () => {
    const raw = spawn(["--role", "person"]);
    const marker = join(fixture.project, "stdio-mrtr-ran");
    const call = { name: "run_command", arguments: { command: `echo ran >> ${marker}; echo stdio-mrtr` } };
    const asked = await raw.modern("tools/call", call, { capabilities: elicits, client: "stdio-person" });
    expect(asked.result.resultType).toBe("input_required");
    const form = asked.result.inputRequests.decision;
    expect(form.method).toBe("elicitation/create");
    expect(form.params.message).toContain("run this command?");
    expect(form.params.message).toContain("stdio-mrtr-ran");
    const state = asked.result.requestState as string;
    expect(existsSync(marker)).toBe(false);

    const accept = { decision: { action: "accept", content: { decision: "accept" } } };
    // A malformed answer is refused before the state is redeemed: the state still serves the retry below.
    const malformed = await raw.modern(
      "tools/call",
      { ...call, inputResponses: { decision: "accept" }, requestState: state },
      { capabilities: elicits, client: "stdio-person" },
    );
    expect(malformed.error?.code).toBe(-32602);
    expect(malformed.error?.message).toMatch(/inputResponses/);
    const ran = await raw.modern("tools/call", { ...call, inputResponses: accept, requestState: state }, { capabilities: elicits, client: "stdio-person" });
    expect(ran.error).toBeUndefined();
    expect(ran.result.resultType).toBe("complete");
    expect(text(ran.result)).toContain("stdio-mrtr");
    expect(text(ran.result)).toContain("exit_code: 0");
    expect(readFileSync(marker, "utf8")).toBe("ran\n");

    const replay = await raw.modern("tools/call", { ...call, inputResponses: accept, requestState: state }, { capabilities: elicits, client: "stdio-person" });
    expect(replay.error.code).toBe(-32602);
    expect(replay.error.message).toMatch(/used already|decided already/);
    expect(readFileSync(marker, "utf8")).toBe("ran\n");

    const declined = { name: "run_command", arguments: { command: `echo no >> ${marker}` } };
    const again = await raw.modern("tools/call", declined, { capabilities: elicits, client: "stdio-person" });
    expect(again.result.resultType).toBe("input_required");
    const no = await raw.modern(
      "tools/call",
      { ...declined, inputResponses: { decision: { action: "decline" } }, requestState: again.result.requestState },
      { capabilities: elicits, client: "stdio-person" },
    );
    expect(no.result.isError).toBe(true);
    expect(text(no.result)).toMatch(/Rejected by .*did not run/s);
    expect(readFileSync(marker, "utf8")).toBe("ran\n");
  }, 90_000);

  it("an agent's client is never offered an accept, though it elicits: its call waits for a person (spool approve) and then runs", async () => {
    const raw = spawn();
    const web = await person();
    const proposed = web.next("run/proposal", (p) => p.command === "echo agent-on-stdio", 20_000);
    const id = raw.request("tools/call", raw.modernParams({ name: "run_command", arguments: { command: "echo agent-on-stdio" } }, { capabilities: elicits }));
    const p = await proposed;
    // It was not answered input_required: the call is still waiting.
    expect(raw.messages.find((m) => m.id === id)).toBeUndefined();
    const approve = await runCli(["approve", p.run, p.path], env(), fixture.project, 30_000);
    expect(approve.code, approve.err).toBe(0);
    const answer = await raw.next((m) => m.id === id && m.method === undefined);
    expect(answer.result.resultType).toBe("complete");
    expect(text(answer.result)).toContain("agent-on-stdio");
  }, 60_000);

  it("with the tasks extension run_command answers a task; a person decides it with spool approve; tasks/get then gives the result", async () => {
    const raw = spawn();
    const web = await person();
    const withTasks = { extensions: { [TASKS]: {} }, ...elicits };
    const proposed = web.next("run/proposal", (p) => p.command === "echo stdio-task", 20_000);
    const created = await raw.modern("tools/call", { name: "run_command", arguments: { command: "echo stdio-task" } }, { capabilities: withTasks });
    expect(created.result).toMatchObject({ resultType: "task", status: "working" });
    const taskId = created.result.taskId as string;
    const waiting = await raw.modern("tasks/get", { taskId }, { capabilities: withTasks });
    expect(waiting.result).toMatchObject({ status: "working", taskId });
    expect(waiting.result).not.toHaveProperty("inputRequests");
    // An agent's answer decides nothing.
    const update = await raw.modern(
      "tasks/update",
      { taskId, inputResponses: { decision: { action: "accept", content: { decision: "accept" } } } },
      { capabilities: withTasks },
    );
    expect(update.error.code).toBe(-32602);

    const p = await proposed;
    const approve = await runCli(["approve", p.run, p.path], env(), fixture.project, 30_000);
    expect(approve.code, approve.err).toBe(0);
    let done: Message = {};
    await eventually(
      async () => {
        done = (await raw.modern("tasks/get", { taskId }, { capabilities: withTasks })).result;
        return done.status === "completed";
      },
      30_000,
      "the task to complete",
    );
    expect(text(done.result)).toContain("stdio-task");
    expect(text(done.result)).toContain("exit_code: 0");
  }, 60_000);

  it("notifications/cancelled withdraws a waiting run_command without an answer; closing stdin withdraws the ones still waiting", async () => {
    const raw = spawn();
    const web = await person();
    const first = web.next("run/proposal", (p) => p.command === "echo cancelled-on-stdio", 20_000);
    const id = raw.request("tools/call", raw.modernParams({ name: "run_command", arguments: { command: "echo cancelled-on-stdio" } }));
    const p = await first;
    const withdrawn = web.next("run/resolved", (r) => r.path === p.path && r.run === p.run, 20_000);
    raw.send({ method: "notifications/cancelled", params: { requestId: id, reason: "the user pressed Esc" } });
    expect(await withdrawn).toMatchObject({ decision: "reject", reason: expect.stringMatching(/notifications\/cancelled/) });
    await raw.modern("server/discover", {});
    expect(raw.messages.filter((m) => m.id === id)).toEqual([]);

    const second = web.next("run/proposal", (q) => q.command === "echo left-waiting", 20_000);
    raw.request("tools/call", raw.modernParams({ name: "run_command", arguments: { command: "echo left-waiting" } }));
    const q = await second;
    const closed = web.next("run/resolved", (r) => r.path === q.path && r.run === q.run, 20_000);
    raw.cli.child.stdin!.end();
    expect(await closed).toMatchObject({ decision: "reject", reason: expect.stringMatching(/closed the connection/) });
    expect((await raw.cli.exitsWithin(15_000)).code).toBe(0);
  }, 60_000);

  it("subscriptions/listen: tagged with its id, it is told when a proposal appears and when it is decided; notifications/cancelled ends it without an answer", async () => {
    const listener = spawn();
    const web = await person();
    const listenId = listener.request("subscriptions/listen", listener.modernParams({ notifications: { resourceSubscriptions: ["spool://proposals"] } }));
    const tag = { [MODERN_META.subscription]: listenId };
    const ack = await listener.next((m) => m.method === "notifications/subscriptions/acknowledged");
    expect(ack.params).toMatchObject({ notifications: { resourceSubscriptions: ["spool://proposals"] }, _meta: tag });
    const from = listener.messages.length;

    // Another agent proposes in the same project (its own spool mcp): the listener hears of it.
    const agent = spawn();
    const proposed = web.next("run/proposal", (p) => p.command === "echo listened", 20_000);
    const callId = agent.request("tools/call", agent.modernParams({ name: "run_command", arguments: { command: "echo listened" } }));
    const p = await proposed;
    const appeared = await listener.next((m) => m.method === "notifications/resources/updated", from);
    expect(appeared.params).toEqual({ uri: "spool://proposals", _meta: tag });
    const read = await listener.modern("resources/read", { uri: "spool://proposals" });
    expect(read.result.contents[0].text).toContain("echo listened");
    expect(read.result.contents[0].text).toContain(p.path);

    const before = listener.messages.length;
    await web.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    const decided = await listener.next((m) => m.method === "notifications/resources/updated", before);
    expect(decided.params._meta).toEqual(tag);
    await agent.next((m) => m.id === callId && m.method === undefined);
    const after = await listener.modern("resources/read", { uri: `spool://${p.run}/proposals` });
    expect(after.result.contents[0].text).toMatch(/no proposal of run .* waits/);

    listener.send({ method: "notifications/cancelled", params: { requestId: listenId, reason: "done listening" } });
    // The next request's answer comes, and none ever came for the listen.
    await listener.modern("server/discover", {});
    expect(listener.messages.filter((m) => m.id === listenId)).toEqual([]);
  }, 60_000);
  it("a subscriptions/listen Spool refuses (a credential the server does not know) is answered so, never acknowledged to follow nothing", async () => {
    const tokenFile = join(tempDir("spool-mcp-stdio-badtoken-"), "token");
    writeFileSync(tokenFile, "not-a-token-of-this-server\n");
    const raw = spawn(["--token-file", tokenFile]);
    const id = raw.request("subscriptions/listen", raw.modernParams({ notifications: { resourceSubscriptions: ["spool://proposals"] } }));
    const answer = await raw.next((m) => m.id === id);
    expect(answer.error?.code).toBe(-32602);
    expect(answer.error?.message).toMatch(/^Spool refused it: /);
    // Its id is free again, and nothing was acknowledged.
    const again = await raw.modern("server/discover", {});
    expect(again.result?.supportedVersions).toEqual(["2026-07-28"]);
    expect(raw.messages.filter((m) => m.method === "notifications/subscriptions/acknowledged")).toEqual([]);
  }, 60_000);

  it("when spool mcp ends (stdin closed, SIGTERM), each open subscriptions/listen is answered with its completion, tagged with its id; a cancelled one is not", async () => {
    for (const end of ["stdin closed", "SIGTERM"] as const) {
      const raw = spawn();
      const listen = (notifications: object) => raw.request("subscriptions/listen", raw.modernParams({ notifications }));
      const acked = (id: number) => raw.next((m) => m.method === "notifications/subscriptions/acknowledged" && m.params._meta[MODERN_META.subscription] === id);
      const proposals = listen({ resourceSubscriptions: ["spool://proposals"] });
      const lists = listen({ resourcesListChanged: true });
      const cancelled = listen({ resourcesListChanged: true });
      for (const id of [proposals, lists, cancelled]) await acked(id);
      raw.send({ method: "notifications/cancelled", params: { requestId: cancelled, reason: "done listening" } });
      // Its cancel has been read once a later request is answered.
      await raw.modern("server/discover", {});
      const output = new Promise((resolve) => raw.cli.child.stdout!.once("end", resolve));

      if (end === "stdin closed") raw.cli.child.stdin!.end();
      else raw.cli.child.kill("SIGTERM");
      for (const id of [proposals, lists]) {
        const done = await raw.next((m) => m.id === id && m.method === undefined);
        expect(done, end).toEqual({
          jsonrpc: "2.0",
          id,
          result: { resultType: "complete", _meta: { [MODERN_META.subscription]: id, [MODERN_META.server]: expect.objectContaining({ name: "spool" }) } },
        });
      }
      expect((await raw.cli.exitsWithin(15_000)).code, end).toBe(0);
      await output;
      expect(
        raw.messages.filter((m) => m.id === cancelled),
        end,
      ).toEqual([]);
      // The completion is a listen's last message.
      const last = Math.max(...[proposals, lists].map((id) => raw.messages.findIndex((m) => m.id === id && m.method === undefined)));
      expect(raw.messages.slice(last + 1).filter((m) => m.method !== undefined)).toEqual([]);
    }
  }, 60_000);
});
