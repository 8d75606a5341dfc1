import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { spawn as spawnPty } from "node-pty";
import { describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import { SPOOL_BIN } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";

/** The README's CLI tour: the shell block after "The tour below needs no model key", as a shell reads it (comments dropped). */
function tourBlock(): string[] {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const from = readme.indexOf("The tour below needs no model key");
  expect(from).toBeGreaterThan(0);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(from))![1]!;
  return block
    .split("\n")
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

const tourLines = () => tourBlock().filter((l) => l.startsWith("spool "));

async function help(command: string): Promise<{ code: number; text: string }> {
  let text = "";
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    text += String(chunk);
    return true;
  });
  try {
    return { code: await main(["help", command]), text };
  } finally {
    write.mockRestore();
  }
}

interface Background {
  line: string;
  child: ChildProcess;
  out: () => string;
  exit: Promise<number | null>;
}

describe("the README's CLI tour", () => {
  it("names only commands and options that exist", async () => {
    const lines = tourLines();
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) {
      const [, command, ...rest] = line.split(/\s+/);
      if (command === "help") continue;
      const { code, text } = await help(command!);
      expect(code, line).toBe(0);
      for (const option of rest.filter((w) => /^-{1,2}[a-z]/.test(w)).map((w) => w.replace(/^\[/, ""))) {
        expect(text, `${line}: ${option}`).toContain(option);
      }
    }
  });

  it("is followed start to finish on a fresh machine with the demo model: every command works as shown", async () => {
    // A fresh machine: an empty home (the port in its config.json, so nothing else on 7420 matters), `spool` on the PATH.
    const base = tempDir("spool-tour-");
    const home = join(base, ".spool");
    mkdirSync(home);
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    writeFileSync(join(home, "config.json"), JSON.stringify({ port }));
    const bin = join(base, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "spool"), `#!/bin/sh\nexec "${process.execPath}" "${SPOOL_BIN}" "$@"\n`);
    chmodSync(join(bin, "spool"), 0o755);
    const app = join(base, "src", "my-app");
    mkdirSync(app, { recursive: true });
    execFileSync("git", ["init", "-q", app]);
    writeFileSync(join(app, "README.md"), "# my-app\n\nA small app.\n");
    const env: Record<string, string> = { ...(process.env as Record<string, string>), HOME: base, SPOOL_HOME: home, PATH: `${bin}:${process.env.PATH}` };
    delete env.SPOOL_LOG;
    let cwd = base;
    const background: Background[] = [];
    const bg = (pattern: RegExp) => {
      const found = background.find((b) => pattern.test(b.line));
      expect(found, `a background command matching ${pattern}`).toBeDefined();
      return found!;
    };
    const lines = tourBlock();
    expect(lines[0]).toBe("spool serve --demo-model &");
    // spool serve --help sends people to docs/cli.md "Settings": it exists.
    expect(readFileSync(new URL("../../docs/cli.md", import.meta.url), "utf8")).toMatch(/^#+ Settings$/m);
    try {
      for (const line of lines) {
        if (line.startsWith("cd ")) {
          cwd = resolve(base, line.slice(3).replace(/^~\//, ""));
          continue;
        }
        if (line.endsWith("&")) {
          // Its own process group: the shell may not exec the command, and the server it starts must go with it.
          const child = spawn("sh", ["-c", line.slice(0, -1).trim()], { cwd, env, stdio: ["pipe", "pipe", "pipe"], detached: true });
          let out = "";
          child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
          child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
          const exit = new Promise<number | null>((r) => child.once("exit", r));
          background.push({ line, child, out: () => out, exit });
          // Ready as a person would see it: the server listening, a proposal waiting, a command running.
          await eventually(
            () => /Spool listening on|waiting for a decision|accepted, running on/.test(out) || child.exitCode !== null,
            30_000,
            `${line} to be under way: ${out}`,
          );
          expect(child.exitCode, `${line}\n${out}`).toBeNull();
          if (line.startsWith("spool serve")) {
            expect(out).toContain(`Spool listening on ws://127.0.0.1:${port}/`);
            expect(out).toContain("models:     demo (built-in demo)");
          }
          continue;
        }
        if (/^spool (act|ask) /.test(line) && !line.includes("<") && !line.includes("--yes")) {
          // A person at a terminal: y at each Accept?.
          const term = spawnPty("sh", ["-c", line], { cols: 160, rows: 50, cwd, env });
          let screen = "";
          let answered = 0;
          term.onData((data) => {
            screen += data;
            const asked = screen.match(/Accept\?/g)?.length ?? 0;
            if (asked > answered) {
              answered = asked;
              term.write("y");
            }
          });
          const code = await new Promise<number>((r) => term.onExit(({ exitCode }) => r(exitCode)));
          expect(code, `${line}\n${screen}`).toBe(0);
          expect(answered, line).toBeGreaterThan(0);
          expect(screen, line).toMatch(/finished: done, exit 0/);
          expect(screen, line).toContain("[demo model]");
          continue;
        }
        let out: string;
        try {
          out = execFileSync("sh", ["-c", line], { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
        } catch (error) {
          const e = error as { status: number; stdout: string; stderr: string };
          throw new Error(`${line} exited ${e.status}:\n${e.stdout}\n${e.stderr}`);
        }
        // What each command is shown to do.
        if (line === "spool init") expect(out).toContain('Spool project "my-app"');
        if (line === "spool models") expect(out).toMatch(/demo\s+demo\s+builtin/);
        if (line === "spool runs") expect(out).toMatch(/run-2\s+done\s+What is here\?[\s\S]*run-1\s+done\s+How long is the README\?/);
        if (line === "spool show") expect(out).toMatch(/#1 ls {2}log:\/\/turn_1\/env\/ls · done, exit 0/);
        if (line === "spool tail 1") expect(out).toMatch(/\d+\s+\d+\s+\d+ README\.md/);
        if (line === "spool pending") expect(out).toContain('read name; echo "hello $name"');
        if (line === "spool approve 3 1") expect(out).toMatch(/^accepted log:\/\/turn_1\/sh\/read-name/);
        if (line.startsWith("spool input")) {
          const greet = bg(/Greet me/);
          expect(await greet.exit, greet.out()).toBe(0);
          expect(greet.out()).toContain("hello Ada");
        }
        if (line === "spool entries 3") expect(out).toMatch(/1\s+log:\/\/turn_1\/sh\/read-name\S*\s+done, exit 0/);
        if (line.startsWith("spool reject")) {
          const nap = bg(/Nap/);
          // Its proposal was rejected (by another client): the work was not done.
          expect(await nap.exit, nap.out()).toBe(1);
          expect(nap.out()).toContain("was rejected by admin via spool-cli: not now");
        }
        if (line === "spool cancel") {
          expect(out).toMatch(/^cancelled log:\/\/turn_1\/sh\/for-i-in/);
          const count = bg(/Count/);
          // Its command was cancelled from another client: the work was not done (exit 1, not "✔ done").
          expect(await count.exit, count.out()).toBe(1);
          expect(count.out()).toContain("✖ not done: for i in $(seq 300); do echo $i; sleep 1; done — cancelled");
          expect(count.out()).toContain("finished: cancelled");
        }
        if (line === "spool abort") {
          expect(out).toMatch(/^aborted run-6: rejected 1 proposal/);
          const tidy = bg(/Tidy up/);
          expect(await tidy.exit, tidy.out()).toBe(130);
        }
        if (line === "spool runs --all") expect(out).toMatch(/run-6\s+my-app\s+aborted/);
        if (line === "spool runners") expect(out).toMatch(/local\s+local\s+implied/);
        if (line === "spool completion bash") expect(out).toContain("complete -o default -F _spool spool");
        if (line === "spool help tail") expect(out).toMatch(/^Usage: spool tail/);
      }
      // Everything started in the background has ended, but the server.
      for (const b of background.filter((x) => !x.line.startsWith("spool serve"))) expect(b.child.exitCode, b.line).not.toBeNull();
    } finally {
      for (const b of background.reverse()) {
        if (b.child.exitCode === null) {
          process.kill(-b.child.pid!, "SIGTERM");
          await b.exit;
        }
      }
    }
  }, 180_000);
});
