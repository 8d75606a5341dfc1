import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { freePort, spawnCli, spawnRunner, spawnServe } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";

/**
 * Someone else's listener on a loopback port: it records every byte a client sends it and never answers; after
 * `hangUp` it closes every connection, those open and those to come, once it has recorded what they sent.
 */
function recordingListener(port = 0): Promise<{ port: number; received: () => string; hangUp: () => void; close: () => void }> {
  let received = "";
  let hungUp = false;
  const open = new Set<Socket>();
  const server = createServer((socket) => {
    socket.on("data", (d) => (received += d.toString("latin1")));
    socket.on("error", () => undefined);
    if (hungUp) return void socket.end();
    open.add(socket);
    socket.on("close", () => open.delete(socket));
  });
  const hangUp = () => {
    hungUp = true;
    for (const socket of open) socket.end();
  };
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () =>
      resolve({ port: (server.address() as { port: number }).port, received: () => received, hangUp, close: () => server.close() }),
    );
  });
}

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe("credentials go only to the real server (real processes)", () => {
  it("the other local user: `SPOOL_PORT=<their port> spool runs` sends them no token and says how to fix it", async () => {
    const home = tempDir();
    cleanup.push(() => rmSync(home, { recursive: true, force: true }));
    const token = "a".repeat(64);
    writeFileSync(join(home, "token"), `${token}\n`, { mode: 0o600 });
    const listener = await recordingListener();
    cleanup.push(listener.close);
    const cli = spawnCli(["runs"], { SPOOL_HOME: home, SPOOL_PORT: String(listener.port), SPOOL_SERVER: "", SPOOL_TOKEN_FILE: "" });
    const { code } = await cli.exitsWithin(20_000);
    expect(code).toBe(3);
    expect(cli.stderr()).toMatch(/gave no proof within .*did not prove it is the Spool server holding this token, and the token was not sent.*spool.sock/);
    expect(listener.received()).toContain("spool-proof");
    expect(listener.received()).not.toContain(token);
    expect(listener.received()).not.toMatch(/authorization: bearer/i);
  });

  it("local clients use the home's socket: a listener on the configured port gets nothing, and `spool runs` works", async () => {
    const home = tempDir();
    cleanup.push(() => rmSync(home, { recursive: true, force: true }));
    const serve = await spawnServe(["--home", home, "--port", "0"], { SPOOL_LOCAL_RUNNER: "off" });
    cleanup.push(() => serve.stop());
    expect(serve.output()).toContain(`socket:     ${join(home, "spool.sock")}`);
    const listener = await recordingListener();
    cleanup.push(listener.close);
    const project = tempDir("spool-project-");
    cleanup.push(() => rmSync(project, { recursive: true, force: true }));
    mkdirSync(join(project, ".git"));
    const cli = spawnCli(["runs", "--all"], { SPOOL_HOME: home, SPOOL_PORT: String(listener.port), SPOOL_SERVER: "", SPOOL_TOKEN_FILE: "" }, { cwd: project });
    const { code } = await cli.exitsWithin(20_000);
    expect({ code, stderr: cli.stderr() }).toEqual({ code: 0, stderr: "" });
    expect(listener.received()).toBe("");
  });

  it("the port squatter: a runner whose server restarts reconnects over the socket, never to what took the old port", async () => {
    const home = tempDir();
    cleanup.push(() => rmSync(home, { recursive: true, force: true }));
    const port = await freePort();
    const env = { SPOOL_HOME: home, SPOOL_SERVER: "", SPOOL_TOKEN_FILE: "", SPOOL_PORT: String(port), SPOOL_LOCAL_RUNNER: "off" };
    let serve = await spawnServe(["--home", home], env);
    // A runner joins a project that exists: made here with its root.
    const made = spawnCli(["projects", "add", tempDir("spool-squat-root-"), "--name", "squat"], env);
    expect(await made.exit).toBe(0);
    const runner = await spawnRunner(["--project", "squat", "--name", "box", "--backend", "local"], env);
    cleanup.push(() => runner.stop());
    expect(runner.output()).toContain(`attached to ws+unix://${join(home, "spool.sock")}:/`);
    const token = (await import("node:fs")).readFileSync(join(home, "token"), "utf8").trim();
    expect(await serve.stop()).toBe(0);
    // The old port is taken by someone else; the server comes back on another one.
    const squatter = await recordingListener(port);
    cleanup.push(squatter.close);
    serve = await spawnServe(["--home", home, "--port", "0"], env);
    cleanup.push(() => serve.stop());
    // The runner may be waiting on the squatter for a proof it never gets (its attempt while the server was away
    // found no socket and took the port): the squatter hangs up now rather than let it wait out its 10 s timeout.
    squatter.hangUp();
    const client = await SpoolClient.connect(`ws+unix://${join(home, "spool.sock")}:/`, { token });
    cleanup.push(() => client.close());
    await client.initialize("squat", { create: false });
    await eventually(async () => (await client.call("runner/list", {})).runners.some((r) => r.name === "box"), 20_000, "the runner to come back");
    expect(squatter.received()).not.toContain(token);
    expect(squatter.received()).not.toMatch(/authorization/i);
  }, 150_000);
});
