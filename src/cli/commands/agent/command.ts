import { type Command, defineCommand, parseSpec, showHelp } from "../../command-spec.js";
import { connectClient } from "../../common.js";
import { usageError } from "../../errors.js";
import { agentExitCodesHelp } from "../../exit-codes.js";
import type { AnswerSource } from "./questions.js";
import { drive } from "./session.js";

/** The row of `spool ask` / `spool act`: the same options, the words for what each does. */
export const agentSpec = (mode: "ask" | "act") =>
  defineCommand({
    name: mode,
    usage: `spool ${mode} "PROMPT" --model ALIAS [--run ALIAS] [--yes | --answers-from-stdin]
       spool ${mode} --run ALIAS          follow a run again (no PROMPT)`,
    about: `${mode === "ask" ? "Asks a model about the project with read-only tools (env, get, wait)." : "Gives a model a task; it proposes shell commands that you accept or reject."}
Shows the model's text as it streams, each proposal (tool, command, working
directory, extra environment, terminal, runner, sandbox mode, background, time
limit, control characters shown as escapes) with a prompt to accept (y), reject
(n) or always accept it in this run (a: the same command in the same directory
with the same environment), and the live output of accepted commands (stderr
apart from stdout), then how it ended (done, exit 0 / failed, exit 2 /
cancelled: why). Proposals can also be decided from anywhere else (spool
pending / approve / reject, the web view): the prompt moves on, and a command
accepted elsewhere is followed here all the same (Ctrl-C cancels it).
On a terminal the model's text and a command's output are drawn under a │
gutter, their colours kept and any other terminal control shown as text
(^[[2J), never obeyed; each proposal is drawn on a reset terminal.

On a terminal the prompt takes one key pressed after it appears: whatever was
typed before (for a command, or ahead) is discarded, never taken as an answer.
Typing while a command runs does not reach it: answer it with spool attach RUN
N or spool input RUN N TEXT (N: its number in the run). In the background
(spool act … &) the terminal is left alone until fg. When stdin is not a
terminal nothing is read from it: proposals wait for a decision from another
client, unless --yes or --answers-from-stdin says otherwise.

Without a PROMPT, --run follows that run again: it offers the proposals still
pending and shows what the run does until it is idle.

Ctrl-C cancels the running command; at a prompt, or a second time, it aborts
the run. A new run is named run-N.

${agentExitCodesHelp()}`,
    connects: true,
    options: {
      model: { type: "string", arg: "ALIAS", help: 'a model alias (spool models; "demo" with spool serve --demo-model)' },
      run: { type: "string", arg: "ALIAS", help: "continue this run (created if it does not exist)" },
      yes: { type: "boolean", short: "y", help: "accept every proposal without asking" },
      "answers-from-stdin": {
        type: "boolean",
        help: `stdin is not a terminal and holds the answers: one line
(y, n or a) per proposal, in order; its end rejects`,
      },
    },
  });

export function agentCommand(mode: "ask" | "act"): Command {
  const spec = agentSpec(mode);
  return { spec, run: (argv) => agentRun(mode, spec, argv) };
}

async function agentRun(mode: "ask" | "act", spec: ReturnType<typeof agentSpec>, argv: string[]): Promise<number> {
  const { values, positionals } = parseSpec(spec, argv);
  if (values.help) return showHelp(spec);
  const prompt = positionals.join(" ").trim();
  if (!prompt && !values.run) throw usageError(`spool ${mode} needs a PROMPT, or --run ALIAS to follow a run again (see \`spool help ${mode}\`)`);
  if (!prompt && values.model) throw usageError("--model needs a PROMPT: it chooses the model of a new run");
  const fromStdin = Boolean(values["answers-from-stdin"]);
  if (fromStdin && values.yes) throw usageError("--yes and --answers-from-stdin exclude each other: --yes accepts everything, the other reads answers");
  if (fromStdin && process.stdin.isTTY)
    throw usageError("--answers-from-stdin is for answers piped in; on a terminal each prompt takes a key pressed after it appears");
  const answers: AnswerSource = values.yes ? "none" : fromStdin ? "lines" : process.stdin.isTTY ? "keys" : "none";
  const { client } = await connectClient(values, { name: `spool-${mode}`, create: Boolean(prompt) });
  try {
    return await drive(client, mode, prompt, { model: values.model, run: values.run, yes: Boolean(values.yes), answers });
  } finally {
    client.close();
  }
}
