import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { suggest } from "../../src/cli/main.js";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { RUN } from "../../src/protocol/status.js";
import { type CliInProcess, startCliInProcess } from "../helpers/cli-in-process.js";
import { SPOOL_BIN, spawnCli, spawnServe } from "../helpers/process.js";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/** A directory made a git repository's root (only `.git` is looked at). */
function gitRoot(...parts: string[]): string {
  const dir = join(...parts);
  mkdirSync(join(dir, ".git"), { recursive: true });
  return dir;
}

describe("the spool command line", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  let base: string;
  /**
   * Exits within 5 s of starting its work: measured against `spool --version` started at the same moment, so a
   * loaded machine's start-up cost (tsx loading) is not counted.
   */
  const exitsPromptly = async (proc: Pick<CliInProcess, "exitsWithin">) => {
    const [run, baseline] = await Promise.all([proc.exitsWithin(90_000), spawnCli(["--version"]).exitsWithin(90_000)]);
    expect(run.ms - baseline.ms).toBeLessThan(5_000);
    return run;
  };
  const env = () => ({ SPOOL_SERVER: ts.server.url, SPOOL_TOKEN_FILE: ts.server.config.tokenFile, SPOOL_HOME: ts.home, SPOOL_PROJECT: "" });
  /** A command run in this process (helpers/cli-in-process.ts); `process` for one that gets a signal. */
  const cli = (args: string[], cwd: string, extra: NodeJS.ProcessEnv = {}) => startCliInProcess(args, { ...env(), ...extra }, { cwd });
  const process_ = (args: string[], cwd: string) => spawnCli(args, env(), { cwd });

  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl }, agent: { toolYieldMs: 1_000 } });
    base = tempDir("spool-cli-");
  }, 90_000);
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });

  describe("conventions", () => {
    it("--version, help CMD, suggestions, one exit code for usage errors, --json only where it does something", async () => {
      // Six commands that change nothing, started side by side.
      const version = spawnCli(["--version"]);
      const help = spawnCli(["help", "tail"]);
      const typo = spawnCli(["tial"]);
      const flag = spawnCli(["runs", "--jsno"], env());
      const json = spawnCli(["tail", "r", "log://x", "--json"], env());
      const extra = spawnCli(["approve", "r", "p", "extra"], env());
      expect(await version.exit).toBe(0);
      expect(version.stdout()).toMatch(/^spool \d+\.\d+\.\d+\n$/);
      expect(await help.exit).toBe(0);
      expect(help.stdout()).toMatch(/^Usage: spool tail \[RUN \[CMD\]\]/);
      expect(await typo.exit).toBe(2);
      expect(typo.stderr()).toContain('unknown command "tial" — did you mean "tail"?');
      expect(await flag.exit).toBe(2);
      expect(flag.stderr()).toMatch(/Unknown option '--jsno'.*spool help runs/);
      expect(await json.exit).toBe(2);
      expect(await extra.exit).toBe(2);
      expect(extra.stderr()).toContain('spool approve: unexpected argument "extra"');
      expect(suggest("pendnig", ["pending", "runs"])).toBe("pending");
      expect(suggest("xyz", ["pending", "runs"])).toBeNull();
    }, 90_000);

    it("errors say what to do: no server, wrong token, no token file", async () => {
      const dir = gitRoot(base, "errors");
      const noServer = cli(["runs"], dir, { SPOOL_SERVER: "ws://127.0.0.1:9/" });
      const { code } = await exitsPromptly(noServer);
      expect(code).toBe(3);
      expect(noServer.stderr()).toBe("spool runs: no server at ws://127.0.0.1:9/ — start one with `spool serve` (or pass --server URL)\n");
      const wrongTokenFile = join(base, "wrong-token");
      await import("node:fs").then((fs) => fs.writeFileSync(wrongTokenFile, "not-the-token\n"));
      const wrong = cli(["runs"], dir, { SPOOL_TOKEN_FILE: wrongTokenFile });
      expect((await exitsPromptly(wrong)).code).toBe(3);
      expect(wrong.stderr()).toMatch(/^spool runs: wrong token for ws:\/\/.* — the server's token is in its home's token file/);
      const noFile = cli(["runs"], dir, { SPOOL_TOKEN_FILE: join(base, "absent") });
      expect((await exitsPromptly(noFile)).code).toBe(3);
      expect(noFile.stderr()).toContain("no token file at");
      expect(noFile.stderr()).toContain("start the server with `spool serve`");
    }, 90_000);
  });

  describe("projects like git", () => {
    it("found by walking up; two directories with one base name are two projects; reading never creates one", async () => {
      const a = gitRoot(base, "a", "app");
      const b = gitRoot(base, "b", "app");
      mkdirSync(join(a, "src", "deep"), { recursive: true });
      // Reading in a project the server does not know: nothing to list (no error), and nothing created.
      const read = cli(["runs"], join(a, "src", "deep"));
      expect(await read.exit).toBe(0);
      expect(read.stdout()).toContain(`no runs in this project (${a}) yet`);
      const c = await ts.client();
      await expect(c.initialize(undefined, { root: a, create: false })).rejects.toMatchObject({ errorCode: "NOT_FOUND" });

      model.reply({ text: "A here." });
      const inA = cli(["ask", "where am I", "--model", "test", "--run", "ra"], join(a, "src"));
      expect(await inA.exit).toBe(0);
      model.reply({ text: "B here." });
      const inB = cli(["ask", "where am I", "--model", "test", "--run", "rb"], b);
      expect(await inB.exit).toBe(0);

      const runsA = cli(["runs", "--json"], join(a, "src", "deep"));
      const runsB = cli(["runs", "--json"], b);
      expect(await runsA.exit).toBe(0);
      expect(JSON.parse(runsA.stdout()).map((r: { alias: string }) => r.alias)).toEqual(["ra"]);
      expect(await runsB.exit).toBe(0);
      expect(JSON.parse(runsB.stdout()).map((r: { alias: string }) => r.alias)).toEqual(["rb"]);
      const joinedA = await (await ts.client()).initialize(undefined, { root: a, create: false });
      const joinedB = await (await ts.client()).initialize(undefined, { root: b, create: false });
      expect([joinedA.project.name, joinedB.project.name].sort()).toEqual(["app", "app-2"]);
    }, 90_000);

    it("a directory name that is no valid project name: the CLI derives one and exits", async () => {
      const dir = gitRoot(base, "My App ünï");
      model.reply({ text: "Fine." });
      const ask = cli(["ask", "hello", "--model", "test", "--run", "odd"], dir);
      expect((await ask.exitsWithin(60_000)).code).toBe(0);
      const joined = await (await ts.client()).initialize(undefined, { root: dir, create: false });
      expect(joined.project.name).toBe("My-App-uni");
    }, 90_000);

    it("no marker anywhere: a usage error that says to run spool init; spool init names the project and registers it", async () => {
      const plain = join(base, "plain", "work");
      mkdirSync(plain, { recursive: true });
      const lost = cli(["entries"], plain);
      expect(await lost.exit).toBe(2);
      expect(lost.stderr()).toContain("not in a Spool project");
      expect(lost.stderr()).toContain("spool init");

      const init = cli(["init", "plain-work"], plain);
      expect(await init.exit).toBe(0);
      expect(init.stdout()).toContain('initialized Spool project "plain-work"');
      expect(init.stdout()).toContain("registered on the server");
      expect(JSON.parse(readFileSync(join(plain, ".spool", "project.json"), "utf8"))).toEqual({ name: "plain-work" });
      mkdirSync(join(plain, "sub"));
      const runs = cli(["runs"], join(plain, "sub"));
      expect(await runs.exit).toBe(0);
      expect(runs.stdout()).toContain("no runs in this project yet");

      // The same name for another directory is refused, and leaves no marker behind.
      const other = join(base, "plain", "other");
      mkdirSync(other);
      const clash = cli(["init", "plain-work"], other);
      expect(await clash.exit).toBe(1);
      expect(clash.stderr()).toContain('already has a project named "plain-work" with another root');
      expect(clash.stderr()).not.toContain(plain);
      expect(existsSync(join(other, ".spool", "project.json"))).toBe(false);
      const badName = cli(["init", "no good"], other);
      expect(await badName.exit).toBe(2);
      expect(badName.stderr()).toContain("not a valid project name");
    }, 90_000);
  });

  describe("decisions from anywhere, reading output", () => {
    let dir: string;
    let person: SpoolClient;
    beforeAll(async () => {
      dir = gitRoot(base, "decide");
      person = await ts.client();
      await person.initialize(undefined, { root: dir });
      await person.call("run/create", { alias: "d" });
    });

    it("pending lists proposals with cwd, env and escaped command; approve runs one, reject tells why, a second decision says who decided", async () => {
      mkdirSync(join(dir, "sub"), { recursive: true });
      const evil = await person.call("proposal/create", { run: "d", tool: "sh", command: "echo PWNED > f #\r\u001b[2Kls -la", cwd: "sub", env: { MODE: "x" } });
      const good = await person.call("proposal/create", { run: "d", tool: "sh", command: "echo out; echo err >&2", runner: "local" });
      const pending = cli(["pending"], dir);
      expect(await pending.exit).toBe(0);
      const listed = pending.stdout();
      expect(listed).toMatch(
        new RegExp(
          `^d  ${evil.path.replace(/[/.]/g, "\\$&")}  proposed \\d+s ago\n  tool {8}sh\n  command {5}echo PWNED > f #\\\\r\\\\e\\[2Kls -la\n  cwd {9}sub \\(under the project root [^)]+\\)\n`,
        ),
      );
      expect(listed).toContain("  env         MODE=x\n  tty         none\n  runner      default (local; this server's own runner)\n");
      expect(listed).not.toContain("\r");
      expect(listed).toContain(`d  ${good.path}`);
      // A proposal that names its runner shows that runner, not the default.
      expect(listed.slice(listed.indexOf(`d  ${good.path}`))).toContain("  tty         none\n  runner      local (this server's own runner)\n");

      const reject = cli(["reject", "d", evil.path, "--reason", "not that"], dir);
      expect(await reject.exit).toBe(0);
      const again = cli(["approve", "d", evil.path], dir);
      expect(await again.exit).toBe(1);
      expect(again.stderr()).toContain(`${evil.path} is no longer pending: it was rejected by admin via spool-cli: not that`);

      const approve = cli(["approve", "d", good.path], dir);
      expect(await approve.exit).toBe(0);
      expect(approve.stdout()).toContain(`accepted ${good.path}: running on local`);
      const tail = cli(["tail", "d", good.path, "-f"], dir);
      expect(await tail.exit).toBe(0);
      expect(tail.stdout()).toBe("out\n");
      expect(tail.stderr()).toBe("err\n");
      // Without -f: the same output, stdout and stderr apart.
      // Three reads of the finished command, side by side.
      const again2 = cli(["tail", "d", good.path], dir);
      const entries = cli(["entries", "d", "--pattern", "sh://*"], dir);
      const runs = cli(["runs"], dir);
      expect(await again2.exit).toBe(0);
      expect(again2.stdout()).toBe("out\n");
      expect(again2.stderr()).toBe("err\n");
      expect(await entries.exit).toBe(0);
      expect(entries.stdout()).toMatch(/_1\s+stdout\s+done, exit 0/);
      expect(entries.stdout()).toMatch(/_2\s+stderr\s+done, exit 0/);
      expect(await runs.exit).toBe(0);
      expect(runs.stdout()).toMatch(/d\s+(idle|waiting)\s/);
      expect(runs.stdout()).not.toMatch(/\(\d{3}\)/);
    }, 90_000);

    it("tail -f waits for a pending proposal, then follows it; --after without -f is a usage error; a rejected one exits 1", async () => {
      const p = await person.call("proposal/create", { run: "d", tool: "sh", command: "echo later" });
      const follow = cli(["tail", "d", p.path, "-f"], dir);
      const notYet = cli(["tail", "d", p.path], dir);
      expect(await notYet.exit).toBe(1);
      expect(notYet.stderr()).toContain("is a pending proposal: nothing has run yet");
      // Approved from a third process, while tail waits or before it looks: it follows either way.
      const approve = cli(["approve", "d", p.path], dir);
      expect(await approve.exit).toBe(0);
      expect(await follow.exit).toBe(0);
      expect(follow.stdout()).toBe("later\n");

      const after = cli(["tail", "d", p.path, "--after", "3"], dir);
      expect(await after.exit).toBe(2);
      expect(after.stderr()).toContain("--after only works with -f");

      const q = await person.call("proposal/create", { run: "d", tool: "sh", command: "echo never" });
      const waits = cli(["tail", "d", q.path, "-f"], dir);
      await person.call("run/resolve", { run: "d", path: q.path, decision: "reject", reason: "no thanks" });
      expect(await waits.exit).toBe(1);
      expect(waits.stderr()).toContain("was rejected by");
      expect(waits.stderr()).toContain("no thanks");
      const gone = cli(["tail", "d", "sh://turn_1/nope_1"], dir);
      expect(await gone.exit).toBe(4);
      expect(gone.stderr()).toContain("has no entry sh://turn_1/nope_1");
    }, 90_000);

    it("tail -f | head ends quietly when head has read enough", async () => {
      const p = await person.call("proposal/create", { run: "d", tool: "sh", sandbox: "full", command: "streamed by hand" });
      await person.call("run/resolve", { run: "d", path: p.path, decision: "accept", runner: "self" });
      await person.call("stream", { run: "d", path: p.path, channel: 1, chunk: "first\n", seq: 1 });
      const shell = spawn("sh", ["-c", `"${process.execPath}" "${SPOOL_BIN}" tail d '${p.path}' -f | head -n 1; echo "status:$?"`], {
        cwd: dir,
        env: { ...process.env, ...env() },
      });
      let out = "";
      let err = "";
      shell.stdout.on("data", (d: Buffer) => (out += d.toString()));
      shell.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const ended = new Promise<number | null>((r) => shell.once("exit", r));
      await eventually(() => out.includes("first\n"), 30_000, "head to print the first line");
      // head has exited; tail learns it on its next write.
      let seq = 2;
      const feeding = setInterval(
        () => void person.call("stream", { run: "d", path: p.path, channel: 1, chunk: "more\n", seq: seq++ }).catch(() => undefined),
        100,
      );
      try {
        expect(await ended).toBe(0);
      } finally {
        clearInterval(feeding);
      }
      expect(out).toBe("first\nstatus:0\n");
      expect(err).toBe("");
      await person.call("stream/completed", { run: "d", path: p.path, exit_code: 0 });
    }, 90_000);

    it("runners lists backend, default, sandbox, network, who attached it, where it runs and state", async () => {
      const runners = cli(["runners"], dir);
      expect(await runners.exit).toBe(0);
      expect(runners.stdout()).toMatch(/^name\s+backend\s+default\s+sandbox\s+network\s+attached by\s+where\s+state\s+load\s+pools/);
      // With no default set, the embedded runner takes plain accepts (implied), and is not called the default (--json
      // says false); the server itself attached it, on this machine.
      expect(runners.stdout()).toMatch(
        /local\s+local\s+implied\s+(read-only, workspace-write, full|full)\s+(own|shared|none|not said)\s+the server\s+\S+:\d+, on \S+\s+(claiming, attached \d+\w ago|claiming \(starts on first use\))\s+0\s/,
      );
      // The table and --json say one state: the embedded runner claims work before its first command too.
      const json = cli(["runners", "--json"], dir);
      expect(await json.exit).toBe(0);
      const local = (JSON.parse(json.stdout()) as { name: string; state: string }[]).find((r) => r.name === "local");
      expect(local?.state).toBe("claiming");
      expect(runners.stdout()).toMatch(new RegExp(`local\\s.*\\s${local?.state}[ ,]`));
    }, 60_000);
  });

  describe("act never hangs, prompts honestly, and offers pending proposals again", () => {
    it("shows command, cwd, env and runner escaped; always applies to the same command, cwd and env only", async () => {
      const dir = gitRoot(base, "honest");
      mkdirSync(join(dir, "sub"));
      model.reply(
        { tools: [{ id: "c1", name: "sh", arguments: { command: "echo PWNED > f #\r\u001b[2Kls -la" } }] },
        { tools: [{ id: "c2", name: "sh", arguments: { command: "echo same" } }] },
        { tools: [{ id: "c3", name: "sh", arguments: { command: "echo same" } }] },
        { tools: [{ id: "c4", name: "sh", arguments: { command: "echo same", cwd: "sub" } }] },
        { text: "Done." },
      );
      const act = cli(["act", "go", "--model", "test", "--run", "honest", "--answers-from-stdin"], dir);
      await act.waitFor(/Accept\?/);
      expect(act.stdout()).toContain("echo PWNED > f #\\r\\e[2Kls -la");
      expect(act.stdout()).not.toContain("\u001b[2K");
      expect(act.stdout()).toMatch(
        /cwd {9}\/\S+ \(the project root\)\n {2}env {9}none added\n {2}tty {9}none\n {2}runner {6}default \(local; this server's own runner\)\n/,
      );
      act.write("n\n");
      await act.waitFor(/echo same[\s\S]*Accept\?/);
      act.write("a\n");
      await act.waitFor(/cwd {9}sub \(under the project root [^)]+\)\n[\s\S]*Accept\?/);
      // The third (same command, same directory) was accepted without asking; the fourth (another directory) asks.
      expect(act.stdout().match(/Accept\?/g)).toHaveLength(3);
      expect(act.stdout()).toMatch(/accepted by rule #\d+ \(always allow, set by admin via spool-act\)/);
      act.write("y\n");
      // The first proposal was rejected: exit 1 (README's exit codes).
      expect(await act.exit).toBe(1);
    }, 90_000);

    it("Ctrl-C at the accept prompt aborts the run and exits 130 at once", async () => {
      const dir = gitRoot(base, "sigint");
      model.reply({ tools: [{ id: "s1", name: "sh", arguments: { command: "echo wait" } }] });
      const act = process_(["act", "go", "--model", "test", "--run", "sig", "--answers-from-stdin"], dir);
      await act.waitFor(/Accept\?/);
      act.child.kill("SIGINT");
      const { code, ms } = await act.exitsWithin(5_000);
      expect(code).toBe(130);
      expect(ms).toBeLessThan(5_000);
      const c = await ts.client();
      await c.initialize(undefined, { root: dir, create: false });
      expect((await c.call("run/get", { run: "sig" })).run.status).toBe(RUN.aborted);
    }, 90_000);

    it("a proposal decided elsewhere moves the prompt on; act --run offers again what was pending", async () => {
      const dir = gitRoot(base, "elsewhere");
      model.reply(
        { tools: [{ id: "e1", name: "sh", arguments: { command: "echo one" } }] },
        { tools: [{ id: "e2", name: "sh", arguments: { command: "echo two" } }] },
        { text: "All done." },
      );
      const act = process_(["act", "go", "--model", "test", "--run", "away", "--answers-from-stdin"], dir);
      await act.waitFor(/Accept\?/);
      const other = await ts.client();
      await other.initialize(undefined, { root: dir, create: false });
      const first = (await other.call("proposal/list", { run: "away" })).proposals[0]!;
      await other.call("run/resolve", { run: "away", path: first.path, decision: "accept" });
      await act.waitFor(/was accepted by spool-cli|was accepted by/);
      // The second proposal comes; the person walks away (the process dies) without answering.
      await act.waitFor(/echo two[\s\S]*Accept\?/);
      act.child.kill("SIGKILL");
      await act.exit;
      const back = cli(["act", "--run", "away", "--answers-from-stdin"], dir);
      await back.waitFor(/echo two[\s\S]*Accept\?/);
      back.write("y\n");
      expect(await back.exit).toBe(0);
      expect(back.stdout()).toContain("All done.");
      // Where the run was, in words.
      expect(back.stdout()).toContain("run away: waiting\n");
      other.close();
    }, 90_000);
  });

  describe("lost servers", () => {
    it("a server that goes away while act waits: act exits 3 within 5 s, saying the run goes on", async () => {
      const home = tempDir();
      const serve = await spawnServe(["--port", "0", "--home", home, "--no-local-runner"], {
        SPOOL_MODEL_TEST: "openai/test-model",
        OPENAI_BASE_URL: model.baseUrl,
      });
      const dir = gitRoot(base, "restart");
      model.reply({ tools: [{ id: "r1", name: "sh", arguments: { command: "echo wait" } }] });
      const act = spawnCli(
        ["act", "go", "--model", "test", "--run", "lost", "--answers-from-stdin"],
        { SPOOL_SERVER: serve.url, SPOOL_TOKEN_FILE: join(home, "token"), SPOOL_PROJECT: "" },
        { cwd: dir },
      );
      await act.waitFor(/Accept\?/);
      await serve.stop("SIGKILL");
      const { code } = await act.exitsWithin(5_000);
      expect(code).toBe(3);
      expect(act.stderr()).toContain("lost the connection to the server");
      expect(act.stderr()).toContain("spool act --run lost");
    }, 90_000);

    it("a second server on the same home exits at once, naming the holder", async () => {
      const home = tempDir();
      const serve = await spawnServe(["--port", "0", "--home", home, "--no-local-runner"]);
      try {
        const second = spawnCli(["serve", "--port", "0", "--home", home]);
        const { code } = await exitsPromptly(second);
        expect(code).toBe(1);
        expect(second.stderr()).toContain("is in use by another Spool server");
        // Another home, the same port: the address is taken, and the message says what to do.
        const port = new URL(serve.url).port;
        const third = spawnCli(["serve", "--port", port, "--home", tempDir(), "--no-local-runner"]);
        expect((await exitsPromptly(third)).code).toBe(1);
        expect(third.stderr()).toContain(`127.0.0.1:${port} is already in use — is another server running there? Pick another with --port`);
      } finally {
        await serve.stop();
      }
    }, 90_000);
  });
});
