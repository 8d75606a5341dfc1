import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findProgram } from "../../src/runners/sandbox/sandbox.js";
import { shellScript } from "../../src/runners/shell.js";

const execLine = (text: string, name = text.split(" ")[0]!) =>
  `if case $(command -v -- ${name}) in */*) [ -f "$(command -v -- ${name})" ] && [ -x "$(command -v -- ${name})" ] ;; *) false ;; esac; then exec ${text}; else ${text}; fi`;

describe("shellScript", () => {
  it("execs the last simple command of a plain list, keeping everything around it", () => {
    expect(shellScript("python3")).toBe(execLine("python3"));
    expect(shellScript("python3 -q -c 'print(1)' 2>&1 >out.txt")).toBe(execLine("python3 -q -c 'print(1)' 2>&1 >out.txt"));
    expect(shellScript("cd /tmp && python3 manage.py shell\n")).toBe(`cd /tmp && ${execLine("python3 manage.py shell")}\n`);
    expect(shellScript("make || ./run.sh --fast;")).toBe(`make || ${execLine("./run.sh --fast")};`);
    expect(shellScript("set -e\nexport A=1 B='x y'\n\nnode \"app.js\" < in")).toBe(`set -e\nexport A=1 B='x y'\n\n${execLine('node "app.js" < in')}`);
    expect(shellScript("cd sub &&\n  'my tool' --x")).toBe(`cd sub &&\n  ${execLine("'my tool' --x", "'my tool'")}`);
    expect(shellScript("echo hi")).toBe(execLine("echo hi"));
    expect(shellScript("set -eu -o pipefail; python3")).toBe(`set -eu -o pipefail; ${execLine("python3")}`);
  });

  it("leaves alone what it cannot rewrite without changing it", () => {
    for (const command of [
      "",
      "  \n",
      "sleep 1 | cat",
      "sleep 1 & python3",
      "x=$(date); python3",
      "python3 `which x`",
      'python3 "$HOME"',
      "python3 a\\ b",
      "if true; then python3; fi",
      "for i in 1 2; do echo $i; done",
      "while :; do sleep 1; done",
      "{ python3; }",
      "(python3)",
      "! python3",
      "trap 'echo bye' EXIT; python3",
      ". ./env && python3",
      "source env.sh; python3",
      "eval python3",
      "exec python3",
      "FOO=1 python3",
      "python3 &&",
      "python3 ||\n",
      "; python3",
      "python3 # comment",
      "cat <<EOF\nx\nEOF",
      "py* -q",
      "python3 &> log",
      "a && ; b",
      "case x in x) python3 ;; esac",
      ">out python3",
      "python3 'unclosed",
      "python3 >",
      "time python3",
      "python3 é",
      "set -ex; python3",
      "set -o xtrace\npython3",
      "set +v; python3",
    ]) {
      expect(shellScript(command), command).toBe(command);
    }
  });

  describe("with real shells", () => {
    const dir = mkdtempSync(join(tmpdir(), "spool-shell-"));
    writeFileSync(join(dir, "notexec"), "echo never\n");
    writeFileSync(join(dir, "noshebang"), "echo from a script without '#!'\n");
    chmodSync(join(dir, "noshebang"), 0o755);
    mkdirSync(join(dir, "adir"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    // Each shell once (/bin/sh is dash or bash on most machines).
    const found = ["/bin/sh", "dash", "bash", "busybox"].map((s) => findProgram(s, process.env.PATH)).filter((s): s is string => s !== null);
    const shells = found.filter((s, i) => found.findIndex((t) => realpathSync(t) === realpathSync(s)) === i);
    const run = (shell: string, script: string) => {
      const args = shell.endsWith("/busybox") ? ["sh", "-c", script] : ["-c", script];
      // SHLVL: bash whose stdin is a socket (node's pipes are) and no SHLVL takes itself for sshd's and sources
      // ~/.bashrc first (here pyenv's init: 0.5 s a run, the test past its time limit on a busy machine).
      const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C", SHLVL: "1" };
      const r = spawnSync(shell, args, { cwd: dir, encoding: "utf8", env, input: "" });
      return { pid: r.pid, status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
    };

    it.each(shells)("%s: what a command prints and how it ends are the same, rewritten or not", (shell) => {
      for (const command of [
        "echo hi",
        "echo -e 'a'",
        "printf '%s\\n' \"a b\" > out && cat out",
        "cd /nonexistent-dir && echo no",
        "nosuch-program-xyz arg",
        "./notexec",
        "./adir",
        "./noshebang",
        "./nosuch",
        "true; false",
        "false || printf '%s\\n' rescued",
        "exit 3",
        "cat < /nonexistent-file",
        "ls /nonexistent-dir",
        "sh -c 'exit 5'",
        "set -e; false; echo after",
        "env X=1 sh -c 'echo $X'",
        "umask 077; sh -c umask",
        "read x",
        "cd / && pwd",
      ]) {
        const script = shellScript(command);
        expect(script, command).not.toBe(command);
        const [before, after] = [run(shell, command), run(shell, script)];
        expect({ ...after, pid: 0 }, `${command} in ${shell}`).toEqual({ ...before, pid: 0 });
      }
    });

    it.each(shells)("%s: the program takes the shell's place: its pid is the shell's, its signal is its end", (shell) => {
      const direct = run(shell, shellScript("sh -c 'echo $$'"));
      expect(direct.stdout.trim()).toBe(String(direct.pid));
      const listed = run(shell, shellScript("cd / && true; sh -c 'echo $$'"));
      expect(listed.stdout.trim()).toBe(String(listed.pid));
      // A shell in between would end with status 143 (dash, busybox) where the program was killed by TERM.
      expect(run(shell, shellScript("sh -c 'kill -TERM $$'"))).toMatchObject({ status: null, signal: "SIGTERM" });
      // A builtin stays the shell's.
      const builtin = run(shell, shellScript("sh -c 'echo $$'; echo $$"));
      expect(builtin.stdout.trim().split("\n")[1]).toBe(String(builtin.pid));
    });
  });
});
