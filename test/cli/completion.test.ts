import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCliInProcess } from "../helpers/cli-in-process.js";
import { infraRequired } from "../helpers/infra.js";
import { tempDir } from "../helpers/server.js";

/** Whether `shell` runs here. */
const has = (shell: string) => spawnSync(shell, ["-c", "true"]).status === 0;

/**
 * Issue 38, point 7: the completion scripts, run by the shells they are for. Each asks the script's function what
 * it offers for a line, as the shell does on Tab: bash through COMP_WORDS/COMP_CWORD, zsh the same through
 * bashcompinit (its arrays counted from 0, as _bash_complete sets them; what is offered kept to what starts with the word typed, as compadd does).
 */
describe("spool completion, run by bash and zsh", () => {
  const scripts: Record<string, string> = {};
  beforeAll(async () => {
    const dir = tempDir("spool-completion-");
    for (const shell of ["bash", "zsh"]) {
      // In this process (helpers/cli-in-process.ts), as are the commands below.
      const cli = await runCliInProcess(["completion", shell], {}, dir, 60_000);
      expect(cli.code, cli.err).toBe(0);
      scripts[shell] = join(dir, `spool.${shell}`);
      writeFileSync(scripts[shell]!, cli.out);
    }
    // zsh's completion system, initialised once (its dump file): each question below loads the dump instead of
    // scanning every function directory again (0.26 s a shell, ~0.04 s with the dump).
    zdump = join(dir, "zcompdump");
    if (has("zsh")) execFileSync("zsh", ["-c", `autoload -U +X compinit && compinit -u -d '${zdump}'`], { env: { ...process.env, HOME: dir } });
  }, 120_000);
  let zdump = "";

  /** What the script offers for `words` with the cursor on the last one. */
  const offers = (shell: "bash" | "zsh", words: string[]): string[] => {
    const array = words.map((w) => `'${w}'`).join(" ");
    const body =
      shell === "bash"
        ? `source '${scripts.bash}'; COMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; _spool; printf '%s\\n' "\${COMPREPLY[@]}"`
        : `autoload -U +X compinit && compinit -C -d '${zdump}'; source '${scripts.zsh}'; setopt ksharrays; COMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; _spool; printf '%s\\n' "\${COMPREPLY[@]}"`;
    // No spool on PATH: the run names a script asks `spool runs` for are none here.
    const out = execFileSync(shell, ["-c", body], {
      encoding: "utf8",
      env: { ...process.env, PATH: "/usr/bin:/bin", HOME: tempDir("spool-completion-home-") },
    });
    const words_ = out.split("\n").filter(Boolean);
    // zsh's compgen (bashcompinit) offers every word of -W; zsh's compadd then keeps those starting with what is typed.
    return shell === "zsh" ? words_.filter((w) => w.startsWith(words[words.length - 1]!)) : words_;
  };

  for (const shell of ["bash", "zsh"] as const) {
    const missing = has(shell) ? null : `${shell} is not installed (scripts/test-infra.sh installs zsh)`;
    it(`${shell}: commands, the shells after completion, each command's own options only`, (ctx) => {
      if (missing) {
        if (infraRequired) throw new Error(`SPOOL_TEST_INFRA=required: ${missing}`);
        console.warn(`skipping: ${missing}`);
        return ctx.skip();
      }
      expect(offers(shell, ["spool", "ta"])).toEqual(["tail"]);
      // Not files: the shells.
      expect(offers(shell, ["spool", "completion", ""])).toEqual(["bash", "zsh", "fish"]);
      expect(offers(shell, ["spool", "help", "ru"])).toEqual(["runs", "runners", "runner"]);
      expect(offers(shell, ["spool", "tail", "--l"])).toEqual(["--lines"]);
      for (const command of ["ask", "act", "models"]) expect(offers(shell, ["spool", command, "--"]), command).not.toContain("--demo-model");
      expect(offers(shell, ["spool", "serve", "--d"])).toEqual(["--database", "--demo-model"]);
      expect(offers(shell, ["spool", "act", "--"])).toContain("--yes");
      // A subcommand with a row of its own: offered first, then its options, not the command's.
      expect(offers(shell, ["spool", "mcp", "a"])).toEqual(["add"]);
      expect(offers(shell, ["spool", "mcp", "--cr"])).toEqual(["--credential"]);
      expect(offers(shell, ["spool", "mcp", "add", "--dr"])).toEqual(["--dry-run"]);
      expect(offers(shell, ["spool", "mcp", "add", "--"])).not.toContain("--credential");
      expect(offers(shell, ["spool", "acp", "add", "--mo"])).toEqual(["--model"]);
    });
  }
});

describe("spool help", () => {
  const spool = (args: string[]) => runCliInProcess(args, {}, process.cwd(), 60_000);

  it("help --help is the help; tail -n is --lines; show, abort and entries describe no CMD they do not take", async () => {
    const help = await spool(["help", "--help"]);
    expect(help.code, help.err).toBe(0);
    expect(help.out).toContain("Usage: spool <command>");
    const tail = await spool(["tail", "-n", "x"]);
    expect(tail.code).toBe(2);
    expect(tail.err).toContain('--lines must be a positive whole number, got "x"');
    for (const command of ["show", "abort", "entries"]) {
      const text = await spool(["help", command]);
      expect(text.out, command).not.toContain("CMD");
    }
    const typo = await spool(["runs", "-x"]);
    expect(typo.err).toMatch(/^spool runs: Unknown option '-x'/);
  }, 120_000);
});
