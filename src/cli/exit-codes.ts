/**
 * The exit-code contract of every `spool` command, as data: the codes, what each means for any command (README's
 * "Exit codes" table, drawn from here by `npm run docs`; `spool help`), and what each means for `spool act`/`ask`
 * (`spool help act`). test/cli/exit-codes.test.ts runs every row.
 */
export const EXIT = {
  ok: 0,
  /** The work failed: a run failed, a command exited non-zero or was cancelled, a proposal was rejected, the server refused. */
  failed: 1,
  /** Bad command line: unknown command or flag, missing argument, bad value. */
  usage: 2,
  /** No server, wrong token, or the connection was lost. */
  connection: 3,
  /** The project, run, entry, model or other name does not exist. */
  notFound: 4,
  /** Interrupted (Ctrl-C), or the run was aborted. */
  interrupted: 130,
} as const;

/** One row of the contract: the code, its meaning for every command, and for act and ask (null: they do not use it). */
export interface ExitRow {
  code: number;
  meaning: string;
  act: string | null;
}

export const EXIT_TABLE: readonly ExitRow[] = [
  { code: EXIT.ok, meaning: "done", act: "the run finished, every command it ran succeeded and no proposal of it was rejected" },
  {
    code: EXIT.failed,
    meaning:
      "the work failed: the run failed, a proposal was rejected, a command exited non-zero, was killed or was cancelled (act and ask too, whoever cancelled it), the command had already finished (cancel, input), there was nothing to abort, the server refused",
    act: "the run failed, a command it ran did not succeed (exited non-zero, was killed, cancelled from another client or aborted), or a proposal of it was rejected (by a person, by a rule or by the deadline)",
  },
  {
    code: EXIT.usage,
    meaning: "usage error: unknown command or option, missing argument, not in a project",
    act: "no PROMPT, no --model for a new run, --yes with --answers-from-stdin, not in a project",
  },
  {
    code: EXIT.connection,
    meaning: "no server, wrong token, or the connection was lost (a run goes on without its client, unless the server stopped it)",
    act: "the connection to the server was lost (the run stays on the server: follow it again with --run once the server answers)",
  },
  {
    code: EXIT.notFound,
    meaning: "the project, run, entry, model or other name does not exist (the error says which names there are)",
    act: "--run without a PROMPT names no run, or --model names no model of the server",
  },
  {
    code: EXIT.interrupted,
    meaning: "interrupted with Ctrl-C (in act, also when Ctrl-C cancelled the running command), or the run was aborted",
    act: "the run was aborted (Ctrl-C at a prompt or twice, spool abort, the web view), or Ctrl-C cancelled its running command",
  },
];

/** Rows as `spool help` lists them: the code, then its words wrapped at 80 columns under themselves. */
export function codeList(rows: readonly (readonly [code: number, words: string])[]): string {
  return rows
    .map(([code, words]) => {
      const out: string[] = [];
      let line = `  ${String(code).padEnd(5)}`;
      for (const word of words.split(" ")) {
        if (line.trim().length > String(code).length && line.length + 1 + word.length > 80) {
          out.push(line);
          line = " ".repeat(7);
        }
        line += line.endsWith(" ") ? word : ` ${word}`;
      }
      return [...out, line].join("\n");
    })
    .join("\n");
}

/** The exit codes as `spool help` lists them. */
export const exitCodesHelp = (): string => `Exit codes:\n${codeList(EXIT_TABLE.map((r) => [r.code, r.meaning]))}\n`;

/** The exit codes of `spool act` and `spool ask`, as their help lists them. */
export const agentExitCodesHelp = (): string => `Exit codes:\n${codeList(EXIT_TABLE.flatMap((r) => (r.act === null ? [] : [[r.code, r.act] as const])))}`;

/** README's table (`npm run docs`). */
export function exitCodesTable(): string {
  return ["| code | meaning |", "|---|---|", ...EXIT_TABLE.map((r) => `| ${r.code} | ${r.meaning} |`)].join("\n");
}
