import { once } from "node:events";
import { mkdirSync, readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect as connectTcp, type Socket } from "node:net";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema, CreateTaskResultSchema, LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alive, freePort, processWith, type ServeProcess, spawnCli, spawnServe } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";

/*
 * Issue 39: MCP over Streamable HTTP at /mcp on `spool serve`, with run_command as an MCP task whose state is
 * the Spool producer's. Real processes: a `spool serve` subprocess, the SDK's HTTP client, the CLI.
 */

const text = (result: unknown) =>
  (((result as { content?: unknown }).content ?? []) as { type: string; text?: string }[])
    .filter((c) => c.type === "text")
    .map((c) => c.text)
    .join("\n");

describe("MCP over Streamable HTTP at /mcp", () => {
  let home: string;
  let project: string;
  let port: number;
  let server: ServeProcess;
  let token: string;
  const args = () => ["--port", String(port), "--home", home];
  const endpoint = () => new URL(`http://127.0.0.1:${port}/mcp?root=${encodeURIComponent(project)}`);
  const cli = (argv: string[]) => spawnCli(argv, { SPOOL_SERVER: server.url, SPOOL_TOKEN_FILE: join(home, "token"), SPOOL_HOME: home }, { cwd: project });

  /** An MCP client of /mcp over the SDK's StreamableHTTPClientTransport, presenting the server's token. */
  async function connect(name = "http-agent"): Promise<Client> {
    const client = new Client({ name, version: "1.0.0" }, { capabilities: {} });
    await client.connect(new StreamableHTTPClientTransport(endpoint(), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    return client;
  }

  /** Starts run_command as a task: the answer is the task, at once. */
  async function startTask(client: Client, command: string) {
    const created = await client.request(
      { method: "tools/call", params: { name: "run_command", arguments: { command }, task: { ttl: 60_000 } } },
      CreateTaskResultSchema,
    );
    return created.task;
  }

  beforeAll(async () => {
    home = tempDir("spool-mcp-http-home-");
    project = join(tempDir("spool-mcp-http-"), "proj");
    mkdirSync(join(project, ".git"), { recursive: true });
    port = await freePort();
    server = await spawnServe(args());
    token = readFileSync(join(home, "token"), "utf8").trim();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("lists the same tools as spool mcp, run_command able to run as a task", async () => {
    const client = await connect();
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(["cancel", "list_commands", "read_output", "run_command", "send_input", "signal"]);
      expect(tools.find((t) => t.name === "run_command")?.execution).toEqual({ taskSupport: "optional" });
      expect(client.getServerCapabilities()?.tasks).toEqual({ list: {}, cancel: {}, requests: { tools: { call: {} } } });
    } finally {
      await client.close();
    }
  });

  it("docs/mcp.md's mcpServers entry for /mcp, with this server's port and token, connects an SDK client; the run it starts shows in spool runs", async () => {
    const readme = readFileSync(new URL("../../docs/mcp.md", import.meta.url), "utf8");
    const entry = (
      JSON.parse(/```json mcp-http\n([\s\S]*?)```/.exec(readme)![1]!) as {
        mcpServers: { spool: { type: string; url: string; headers: Record<string, string> } };
      }
    ).mcpServers.spool;
    expect(entry.type).toBe("http");
    const url = new URL(entry.url.replace("127.0.0.1:7420", `127.0.0.1:${port}`));
    // The guide's project is by name; this test's project is its directory.
    url.searchParams.delete("project");
    url.searchParams.set("root", project);
    const headers = { Authorization: entry.headers.Authorization!.replace("AGENT-TOKEN", token) };
    const client = new Client({ name: "readme-agent", version: "1.0.0" }, { capabilities: {} });
    await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
    try {
      const call = client.callTool({ name: "run_command", arguments: { command: "echo from the readme" } });
      let line = "";
      await eventually(
        async () => {
          const pending = cli(["pending"]);
          await pending.exit;
          line =
            pending
              .stdout()
              .split("\n")
              .find((l) => l.includes("echo-from-the-readme")) ?? "";
          return line !== "";
        },
        20_000,
        "the proposal to be pending",
      );
      const ref = /(\S+)\s+(log:\/\/\S+)/.exec(line)!;
      const approve = cli(["approve", ref[1]!, ref[2]!]);
      expect(await approve.exit, approve.stderr()).toBe(0);
      expect(text(await call)).toContain("from the readme");
      const runs = cli(["runs"]);
      expect(await runs.exit).toBe(0);
      expect(runs.stdout()).toContain("readme-agent");
    } finally {
      await client.close();
    }
  }, 60_000);

  it("a run_command task outlives its client and a server restart; a person approves it with spool approve, and a new client reads its result", async () => {
    const first = await connect();
    const task = await startTask(first, "echo hello from a task");
    expect(task.status).toBe("working");
    expect(task.statusMessage).toContain("waiting for a person");
    await first.close();

    await server.stop();
    server = await spawnServe(args());

    const second = await connect("http-agent");
    try {
      const waiting = await second.experimental.tasks.getTask(task.taskId);
      expect(waiting.status).toBe("working");
      expect(waiting.statusMessage).toContain("waiting for a person");
      // The new client lists it among its tasks (its runs are titled with its name).
      expect((await second.experimental.tasks.listTasks()).tasks.map((t) => t.taskId)).toContain(task.taskId);

      // A person, from the CLI: the run shows in spool runs like any other, and spool approve accepts it.
      const runs = cli(["runs"]);
      expect(await runs.exit, runs.stderr()).toBe(0);
      expect(runs.stdout()).toContain("http-agent");
      const pending = cli(["pending"]);
      expect(await pending.exit, pending.stderr()).toBe(0);
      const ref = /(\S+)\s+(log:\/\/\S+)/.exec(pending.stdout());
      expect(ref, pending.stdout()).not.toBeNull();
      const approve = cli(["approve", ref![1]!, ref![2]!]);
      expect(await approve.exit, approve.stderr()).toBe(0);

      const result = await second.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
      expect(result.isError).toBeFalsy();
      expect(text(result)).toContain("hello from a task");
      expect(text(result)).toContain("exit_code: 0");
      const done = await second.experimental.tasks.getTask(task.taskId);
      expect(done.status).toBe("completed");
    } finally {
      await second.close();
    }
  }, 120_000);

  it("a request sent on an idle keep-alive connection while the server is stalled is answered, not reset", async () => {
    // A client reuses a connection until a little before the advertised Keep-Alive timeout. Sent then to a server
    // stalled (SIGSTOP here; a busy machine in CI) past the time Node would close an idle connection by itself,
    // the request waits in the kernel: the server must read it when it wakes, not close the connection under it.
    const socket = connectTcp(port, "127.0.0.1");
    const answers = httpAnswers(socket);
    const ask = () => socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    await once(socket, "connect");
    ask();
    const first = await answers.next();
    expect(first.head).toMatch(/^HTTP\/1\.1 200/);
    expect(first.head).toMatch(/\r\nKeep-Alive: timeout=5(\r\n|$)/i);
    const answeredAt = performance.now();
    const pid = server.child.pid!;
    process.kill(pid, "SIGSTOP");
    try {
      await until(answeredAt + 3_000);
      ask();
      // Node alone closes an idle connection 1 s past the advertised 5 s.
      await until(answeredAt + 7_500);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    const second = await answers.next();
    expect(second.head).toMatch(/^HTTP\/1\.1 200/);
    socket.destroy();
  }, 30_000);

  it("tasks/cancel of a running task kills its process; the task is cancelled", async () => {
    const client = await connect("canceller");
    try {
      // The command may run in a sandbox's PID namespace: its process is found by its unique argument, from outside.
      const seconds = `600.${process.pid}`;
      const task = await startTask(client, `exec sleep ${seconds}`);
      const pending = cli(["pending"]);
      expect(await pending.exit, pending.stderr()).toBe(0);
      const line =
        pending
          .stdout()
          .split("\n")
          .find((l) => /log:\/\//.test(l) && l.includes(`sleep-600-${process.pid}`)) ?? "";
      const found = /(\S+)\s+(log:\/\/\S+)/.exec(line);
      expect(found, pending.stdout()).not.toBeNull();
      const approve = cli(["approve", found![1]!, found![2]!]);
      expect(await approve.exit, approve.stderr()).toBe(0);
      let pid = 0;
      await eventually(() => (pid = processWith(["sleep", seconds])) > 0, 20_000, "the command to start");
      expect(alive(pid)).toBe(true);
      expect((await client.experimental.tasks.getTask(task.taskId)).status).toBe("working");

      const cancelled = await client.experimental.tasks.cancelTask(task.taskId);
      expect(cancelled.status).toBe("cancelled");
      await eventually(() => !alive(pid) || processWith(["sleep", seconds]) === 0, 20_000, "the cancelled command's process to die");
      const result = await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
      expect(result.isError).toBe(true);
      expect(text(result)).toContain("cancelled");
      // A terminal task is not cancelled again.
      await expect(client.experimental.tasks.cancelTask(task.taskId)).rejects.toThrow(/terminal status/);
    } finally {
      await client.close();
    }
  }, 60_000);

  it("tasks/cancel of a task still waiting for a person withdraws the proposal: it never runs", async () => {
    const client = await connect("withdrawer");
    try {
      const task = await startTask(client, "echo never");
      const cancelled = await client.experimental.tasks.cancelTask(task.taskId);
      expect(cancelled.status).toBe("cancelled");
      const result = await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
      expect(result.isError).toBe(true);
      expect(text(result)).toContain("did not run");
      const pending = cli(["pending"]);
      expect(await pending.exit).toBe(0);
      expect(pending.stdout()).not.toContain("echo never");
    } finally {
      await client.close();
    }
  });

  it("an unknown task id is an error (-32602); a task call with bad arguments proposes nothing", async () => {
    const client = await connect("careful-agent");
    try {
      await expect(client.experimental.tasks.getTask("spool-not-a-task")).rejects.toThrow(/Task not found/);
      await expect(client.experimental.tasks.getTask("elsewhere")).rejects.toThrow(/Task not found/);
      // A task call with bad arguments is refused before anything is proposed.
      await expect(
        client.request({ method: "tools/call", params: { name: "run_command", arguments: {}, task: { ttl: 1000 } } }, CreateTaskResultSchema),
      ).rejects.toThrow(/command/);
      await expect(
        client.request(
          { method: "tools/call", params: { name: "run_command", arguments: { command: "true", colour: "red" }, task: { ttl: 1000 } } },
          CreateTaskResultSchema,
        ),
      ).rejects.toThrow(/colour/);
      expect((await client.experimental.tasks.listTasks()).tasks).toEqual([]);
    } finally {
      await client.close();
    }
  });

  /** A raw HTTP request to /mcp (the SDK's client would not send what these tests send). */
  function raw(options: {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string;
  }): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port,
          method: options.method ?? "POST",
          path: options.path ?? `/mcp?root=${encodeURIComponent(project)}`,
          headers: options.headers,
        },
        (res) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        },
      );
      req.on("error", reject);
      req.end(options.body);
    });
  }
  const initialize = JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "raw", version: "1" } },
  });
  const json = { "Content-Type": "application/json", Accept: "application/json, text/event-stream" };

  it("refuses a request without the credential (401), with a wrong one or one in the URL (401), a foreign Host or Origin (403), too big a body (413), an unknown session (404)", async () => {
    const auth = { Authorization: `Bearer ${token}` };
    expect((await raw({ headers: json, body: initialize })).status).toBe(401);
    expect((await raw({ headers: { ...json, Authorization: "Bearer wrong" }, body: initialize })).status).toBe(401);
    expect((await raw({ path: `/mcp?root=${encodeURIComponent(project)}&token=${token}`, headers: json, body: initialize })).status).toBe(401);
    const rebinding = await raw({ headers: { ...json, ...auth, Host: "evil.example.com" }, body: initialize });
    expect(rebinding.status).toBe(403);
    expect(rebinding.body).toContain("evil.example.com");
    expect((await raw({ headers: { ...json, ...auth, Origin: "http://evil.example.com" }, body: initialize })).status).toBe(403);
    expect((await raw({ headers: { ...json, ...auth }, body: JSON.stringify({ pad: "x".repeat(2 * 1024 * 1024) }) })).status).toBe(413);
    expect((await raw({ headers: { ...json, ...auth, "Mcp-Session-Id": "no-such-session" }, body: initialize })).status).toBe(404);
    expect((await raw({ path: "/mcp", headers: { ...json, ...auth }, body: initialize })).status).toBe(400);
    expect((await raw({ path: "/mcp?root=/x&colour=red", headers: { ...json, ...auth }, body: initialize })).status).toBe(400);
    // The server's own origin is fine, and a good request opens a session.
    const good = await raw({ headers: { ...json, ...auth, Origin: `http://127.0.0.1:${port}` }, body: initialize });
    expect(good.status, good.body).toBe(200);
    expect(good.headers["mcp-session-id"]).toBeTruthy();
    // Another credential does not see that session.
    const other = await raw({
      headers: { ...json, Authorization: "Bearer other", "Mcp-Session-Id": String(good.headers["mcp-session-id"]) },
      body: initialize,
    });
    expect(other.status).toBe(401);
  });
});

/** Resolves at `at` (performance.now() time). */
function until(at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())));
}

/** The HTTP/1.1 answers arriving on `socket`, one at a time (each with a Content-Length), or the socket's error. */
function httpAnswers(socket: Socket): { next(): Promise<{ head: string; body: Buffer }> } {
  let buffered = Buffer.alloc(0);
  let failed: Error | null = null;
  let wake: (() => void) | null = null;
  socket.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    wake?.();
  });
  socket.on("error", (error) => {
    failed = error;
    wake?.();
  });
  socket.on("close", () => {
    failed ??= new Error("the server closed the connection");
    wake?.();
  });
  return {
    async next() {
      for (;;) {
        const end = buffered.indexOf("\r\n\r\n");
        if (end >= 0) {
          const head = buffered.subarray(0, end).toString("latin1");
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? "0");
          if (buffered.length >= end + 4 + length) {
            const body = buffered.subarray(end + 4, end + 4 + length);
            buffered = buffered.subarray(end + 4 + length);
            return { head, body };
          }
        }
        if (failed) throw failed;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}
