import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readConfigFile } from "../../src/config/file.js";
import { runCli, type ServeProcess, spawnServe, spawnSpoolChild } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const doc = readFileSync(join(root, "docs/runners.md"), "utf8");

/** The block after a fence line that starts with ```TAG. */
function block(tag: string): string {
  const found = new RegExp(`\`\`\`${tag}\\n([\\s\\S]*?)\`\`\``).exec(doc);
  if (!found) throw new Error(`docs/runners.md has no \`\`\`${tag} block`);
  return found[1]!;
}

/**
 * docs/runners.md "Pools": its config.json is one the server takes, and its runner command attaches a runner that the
 * fleet view lists in that pool, with the capacity the command gave.
 */
describe("docs/runners.md: pools", () => {
  let serve: ServeProcess | undefined;
  const children: { stop(): Promise<unknown> }[] = [];
  afterAll(async () => {
    for (const child of children) await child.stop();
    await serve?.stop();
  });

  it("the pools config is taken as written, and the runner command's runner serves that pool", async () => {
    const home = tempDir("spool-docs-pools-");
    writeFileSync(join(home, "config.json"), block("json pools-config"));
    expect(readConfigFile(join(home, "config.json")).pools).toEqual({ linux: { labels: { os: "linux" }, principals: ["build-runner"] } });
    serve = await spawnServe(["--port", "0"], { SPOOL_HOME: home, SPOOL_LOCAL_RUNNER: "off" });
    const app = join(tempDir("spool-docs-pools-app-"), "demo");
    mkdirSync(join(app, ".git"), { recursive: true });
    const env = { SPOOL_HOME: home, SPOOL_SERVER: serve.url };
    expect((await runCli(["init"], env, app, 60_000)).code).toBe(0);
    // The credential as the section above makes it (build-runner, a runner's of project demo).
    const token = await runCli(["token", "create", "build-runner", "--role", "runner", "--project", "demo"], env, app, 60_000);
    expect(token.code, token.err).toBe(0);
    const tokenFile = join(home, "runner.token");
    writeFileSync(tokenFile, token.out, { mode: 0o600 });
    // The runner command as written, but for the server's address and the token file.
    const argv = block("sh pool-runner")
      .replace(/\\\n\s*/g, "")
      .trim()
      .split(/\s+/)
      .slice(4)
      .map((a) => (a === "ws://127.0.0.1:7420/" ? serve!.url : a === "~/.spool/runner.token" ? tokenFile : a));
    expect(argv.slice(0, 1)).toEqual(["runner"]);
    const runner = spawnSpoolChild(argv, { SPOOL_HOME: tempDir() }, { cwd: app });
    children.push(runner);
    await runner.waitFor(/Runner build-1 attached/);
    const pools = await runCli(["runners", "pools", "--json"], env, app, 60_000);
    expect(pools.code, pools.err).toBe(0);
    expect(JSON.parse(pools.out)).toMatchObject([{ key: "pool:linux", configured: true, runners: ["build-1"], capacity: 4, running: 0, queued: 0 }]);
  }, 120_000);
});
