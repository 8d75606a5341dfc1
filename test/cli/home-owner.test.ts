import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startCliInProcess } from "../helpers/cli-in-process.js";
import { infraRequired } from "../helpers/infra.js";
import { spawnCli } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

/*
 * Issue 45 point 6, with real processes and a real second user: `nobody` makes the home (under /tmp), swaps the
 * home's socket for one of its own, writes the config.json. Needs root (to become nobody with setpriv). `spool runs` runs
 * in this process (helpers/cli-in-process.ts); `spool serve` is a process (it first closes the descriptors its process
 * inherited: here they would be the test's).
 */

const AS_NOBODY = ["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"];
const isRoot = process.getuid?.() === 0;
const hasSetpriv = (() => {
  try {
    execFileSync("setpriv", [...AS_NOBODY, "true"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
const missing = !isRoot ? "the tests run as root only (they become nobody with setpriv)" : !hasSetpriv ? "setpriv cannot become nobody here" : null;
if (missing && infraRequired) throw new Error(`SPOOL_TEST_INFRA=required but ${missing}`);

const asNobody = (command: string, ...args: string[]) => execFileSync("setpriv", [...AS_NOBODY, command, ...args], { encoding: "utf8" }).trim();
const NOBODY = Number(asNobody("id", "-u"));

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A directory `nobody` made under /tmp (its own, mode 0755), removed after the test. */
function nobodysDir(): string {
  const dir = asNobody("mktemp", "-d", "/tmp/spool-nobody-XXXXXX");
  asNobody("chmod", "0755", dir);
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A Unix socket `nobody` listens on at `path`: it writes to its stdout every byte a client sends it. */
async function nobodysListener(path: string): Promise<{ received: () => string }> {
  const script = `const s=require("node:net").createServer((c)=>c.on("data",(d)=>process.stdout.write(d.toString("latin1"))));s.listen(${JSON.stringify(path)},()=>process.stderr.write("listening\\n"));`;
  const child: ChildProcess = spawn("setpriv", [...AS_NOBODY, process.execPath, "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  cleanup.push(() => child.kill("SIGKILL"));
  let received = "";
  child.stdout!.on("data", (d: Buffer) => (received += d.toString("latin1")));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => d.toString().includes("listening") && resolve());
    child.once("exit", (code) => reject(new Error(`nobody's listener exited ${code}`)));
  });
  return { received: () => received };
}

describe.skipIf(missing !== null)(`a home another user owns (real processes, setpriv as nobody)${missing ? ` — skipped: ${missing}` : ""}`, () => {
  it("`spool serve` refuses a home nobody made, saying how to fix it, and writes nothing into it", async () => {
    const home = join(nobodysDir(), "home");
    asNobody("mkdir", home);
    const serve = spawnCli(["serve", "--port", "0"], { SPOOL_HOME: home });
    const { code } = await serve.exitsWithin(30_000);
    expect(code).not.toBe(0);
    expect(serve.stderr()).toMatch(new RegExp(`the Spool home ${home} is owned by uid ${NOBODY}, not by this server's user \\(uid 0\\)`));
    expect(serve.stderr()).toContain(`chown -R 0 ${home}`);
    // It took nothing of it: no token, no lock, no database, no socket written there.
    for (const name of ["token", "spool.lock", "spool.db", "spool.sock"]) expect(existsSync(join(home, name)), name).toBe(false);
    expect(statSync(home).uid).toBe(NOBODY);
  });

  it("a swapped socket: `spool runs` sends nobody's socket no token, through a link or in its place, and says why", async () => {
    const mine = nobodysDir();
    const home = join(mine, "home");
    asNobody("mkdir", "-m", "0777", home);
    // The token an earlier `spool serve` of root's wrote into that home.
    const token = "b".repeat(64);
    writeFileSync(join(home, "token"), `${token}\n`, { mode: 0o600 });
    const evil = await nobodysListener(join(mine, "evil.sock"));
    asNobody("ln", "-s", join(mine, "evil.sock"), join(home, "spool.sock"));
    const env = { SPOOL_HOME: home, SPOOL_SERVER: "", SPOOL_TOKEN_FILE: "" };
    const linked = startCliInProcess(["runs"], env);
    expect((await linked.exitsWithin(20_000)).code).toBe(3);
    expect(linked.stderr()).toMatch(/Refusing to send the token: .*spool\.sock is a symbolic link.*the token was not sent/);
    // In its place: a socket of nobody's own at the home's socket path.
    asNobody("rm", join(home, "spool.sock"));
    const direct = await nobodysListener(join(home, "spool.sock"));
    const placed = startCliInProcess(["runs"], env);
    expect((await placed.exitsWithin(20_000)).code).toBe(3);
    expect(placed.stderr()).toMatch(new RegExp(`Refusing to send the token: the socket .*spool\\.sock belongs to uid ${NOBODY}, not to this user`));
    expect(evil.received()).toBe("");
    expect(direct.received()).toBe("");
  });

  it("a config.json another user wrote is refused, and its plugin never runs", async () => {
    const home = tempDir();
    cleanup.push(() => rmSync(home, { recursive: true, force: true }));
    const pluginDir = tempDir("spool-plugin-");
    cleanup.push(() => rmSync(pluginDir, { recursive: true, force: true }));
    const marker = join(pluginDir, "ran");
    const plugin = join(pluginDir, "evil.mjs");
    writeFileSync(
      plugin,
      `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(marker)}, "ran as " + process.getuid());\nexport default { name: "evil", setup() {} };\n`,
    );
    writeFileSync(join(home, "config.json"), JSON.stringify({ plugins: [plugin] }));
    chownSync(join(home, "config.json"), NOBODY, NOBODY);
    const serve = spawnCli(["serve", "--port", "0"], { SPOOL_HOME: home });
    expect((await serve.exitsWithin(30_000)).code).not.toBe(0);
    expect(serve.stderr()).toMatch(new RegExp(`config\\.json ${home}/config\\.json is owned by uid ${NOBODY}`));
    expect(existsSync(marker)).toBe(false);
    // A plugin file another user may write is refused the same way, config.json being root's again.
    chownSync(join(home, "config.json"), 0, 0);
    chownSync(plugin, NOBODY, NOBODY);
    const again = spawnCli(["serve", "--port", "0"], { SPOOL_HOME: home });
    expect((await again.exitsWithin(30_000)).code).not.toBe(0);
    expect(again.stderr()).toMatch(new RegExp(`the plugin ${plugin} is owned by uid ${NOBODY}`));
    expect(existsSync(marker)).toBe(false);
  });
});
