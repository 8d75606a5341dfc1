import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { spawnServe } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";

/** The lines README.md shows `npm start` printing, with its home (/home/you/.spool) and port (7420). */
function readmeStartLines(): string[] {
  const readme = readFileSync(fileURLToPath(new URL("../../README.md", import.meta.url)), "utf8");
  const block = /`npm start` prints[^`]*```\n([\s\S]*?)```/.exec(readme);
  if (!block) throw new Error("README.md has no `npm start` output block");
  return block[1]!.trimEnd().split("\n");
}

describe("spool serve", () => {
  it("prints on a first start exactly what the README shows npm start printing (its home and port put in)", async () => {
    const home = tempDir();
    const serve = await spawnServe(["--port", "0", "--home", home]);
    try {
      const port = new URL(serve.url).port;
      // How many migrations there are is the schema's business, not the README's to keep counting.
      const count = (line: string) => line.replace(/\(\d+ migrations applied\)/, "(N migrations applied)");
      const shown = readmeStartLines().map((line) => count(line.replaceAll("/home/you/.spool", home).replace(":7420/", `:${port}/`)));
      expect(serve.output().trimEnd().split("\n").slice(0, shown.length).map(count)).toEqual(shown);
    } finally {
      await serve.stop();
    }
  });

  it("port 0 picks a free port, prints it with the token file, and SIGTERM stops cleanly keeping the data", async () => {
    const home = tempDir();
    const first = await spawnServe(["--port", "0", "--home", home]);
    expect(first.url).toMatch(/^ws:\/\/127\.0\.0\.1:(\d+)\/$/);
    expect(first.url).not.toMatch(/:0\/$/);
    expect(first.output()).toContain(`token file: ${join(home, "token")}`);
    expect(first.output()).toContain(`database:   ${join(home, "spool.db")}`);
    const token = readFileSync(join(home, "token"), "utf8").trim();
    const client = await SpoolClient.connect(first.url, { token });
    await client.initialize("persist", { root: tempDir("spool-root-") });
    await client.call("run/create", { alias: "kept" });
    expect(await first.stop("SIGTERM")).toBe(0);
    expect(first.output()).toContain("Spool stopped");

    const second = await spawnServe(["--port", "0"], { SPOOL_HOME: home });
    const again = await SpoolClient.connect(second.url, { token });
    await again.initialize("persist");
    expect((await again.call("run/get", { run: "kept" })).run.alias).toBe("kept");
    again.close();
    expect(await second.stop("SIGINT")).toBe(0);
  });

  it("embeds the local runner unless --no-local-runner or SPOOL_LOCAL_RUNNER=off; a SIGTERM aborts its running work", async () => {
    const home = tempDir();
    const token = () => readFileSync(join(home, "token"), "utf8").trim();
    const root = tempDir("spool-root-");
    const names = async (server: { url: string }) => {
      const client = await SpoolClient.connect(server.url, { token: token() });
      await client.initialize("runners", { root });
      const { runners } = await client.call("runner/list", {});
      return { client, names: runners.map((r: { name: string }) => r.name) };
    };
    for (const [args, env] of [
      [["--no-local-runner"], {}],
      [[], { SPOOL_LOCAL_RUNNER: "off" }],
    ] as const) {
      const server = await spawnServe(["--port", "0", "--home", home, ...args], env);
      const { client, names: listed } = await names(server);
      expect(listed).toEqual([]);
      client.close();
      expect(await server.stop()).toBe(0);
    }
    const server = await spawnServe(["--port", "0", "--home", home]);
    const { client, names: listed } = await names(server);
    expect(listed).toEqual(["local"]);
    await client.call("run/create", { alias: "long" });
    const { path } = await client.call("proposal/create", { run: "long", tool: "sh", command: "sleep 300" });
    const { channels } = await client.request("run/resolve", { run: "long", path, decision: "accept" });
    let pid: number | undefined;
    await eventually(async () => Boolean((pid = (await client.request("entry/get", { run: "long", path })).attributes.process?.pid)));
    expect(await server.stop()).toBe(0);
    expect(() => process.kill(pid!, 0)).toThrow(); // the embedded runner killed its work on the way out
    const after = await spawnServe(["--port", "0", "--home", home]);
    const { client: again } = await names(after);
    const channel = await again.request("entry/get", { run: "long", path: channels[0].path });
    expect(channel.status).toBe(ENTRY.cancelled);
    expect(channel.attributes.reason).toBe("server shutting down");
    again.close();
    await after.stop();
  }, 180_000);

  it("SPOOL_HOST and SPOOL_PORT choose the address", async () => {
    const home = tempDir();
    const proc = await spawnServe([], { SPOOL_HOME: home, SPOOL_HOST: "127.0.0.2", SPOOL_PORT: "0" });
    expect(proc.url).toMatch(/^ws:\/\/127\.0\.0\.2:\d+\/$/);
    const code = await proc.stop();
    expect(code, `${proc.output()} signal=${proc.child.signalCode}`).toBe(0);
  });

  it("refuses a bad --port with a message and exit code 1", async () => {
    await expect(spawnServe(["--port", "99999", "--home", tempDir()])).rejects.toThrow(/--port must be 0-65535/);
  });
});
