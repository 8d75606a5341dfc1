import type { SpoolClient } from "../client/spool-client.js";
import type { ResultOf } from "../protocol/methods/index.js";
import { ENTRY, runStatusWord } from "../protocol/status.js";
import { age, escapeControl } from "./common.js";
import { CliError, EXIT } from "./errors.js";
import { resetTerminal } from "./terminal-writer.js";
import { chooseKey } from "./typed-input.js";

/** For commands that take RUN alone. */
export const RUN_HELP = `RUN is a run's name, its number (3 for run-3) or the start of its name; omitted, the
project's latest run.`;

/** For commands that take RUN and CMD. */
export const REFS_HELP = `${RUN_HELP} CMD is a command of the run: its number (as spool show lists them),
part of its path (make, turn_2/sh/npm) or the whole log path; omitted, the latest one.`;

/**
 * Short references, as git, gh and kubectl take them.
 *
 * A run: its alias; a number N (the run called run-N); or the start of one alias (unique). Omitted: the
 * project's latest run.
 *
 * A command of a run: its log path (log://turn_1/sh/make) or a channel path (sh://turn_1/make_1); a number N
 * (the run's Nth command, as `spool show` and `spool entries` number them); or part of its path (`make`,
 * `turn_2/sh/npm`), unique among the run's commands. Omitted: the run's latest command.
 *
 * A number that is both a run's whole name and the number of another (a run named "1", and run-1) names neither:
 * on a terminal the candidates are shown and the person picks one; without one it is an error listing them.
 */
export async function resolveRun(client: SpoolClient, ref: string | undefined): Promise<string> {
  return (await resolveRunRef(client, ref)).alias;
}

type RunView = ResultOf<"run/get">["run"];

/** resolveRun, saying whether the run was picked among several at a terminal (`chosen`: the reference alone named none). */
export async function resolveRunRef(client: SpoolClient, ref: string | undefined): Promise<{ alias: string; chosen: boolean }> {
  if (ref !== undefined) {
    const exact = await client.call("run/get", { run: ref }).catch(() => null);
    const numbered = /^\d+$/.test(ref) && `run-${Number(ref)}` !== ref ? await client.call("run/get", { run: `run-${Number(ref)}` }).catch(() => null) : null;
    if (exact && numbered && exact.run.alias !== numbered.run.alias) return { alias: await pickRun(ref, numbered.run, exact.run), chosen: true };
    if (exact) return { alias: exact.run.alias, chosen: false };
    if (numbered) return { alias: numbered.run.alias, chosen: false };
  }
  return { alias: await resolveLoose(client, ref), chosen: false };
}

/**
 * `ref` is run-N's number and another run's whole name: which one is meant is asked on a terminal (one key
 * pressed after the question), and is an error without one, so a run made to look like the one a person
 * reviewed (issue 36: a run named "1" next to run-1) is never taken for it.
 */
async function pickRun(ref: string, numbered: RunView, named: RunView): Promise<string> {
  const candidates = [
    { run: numbered, why: `run number ${Number(ref)}` },
    { run: named, why: `named "${escapeControl(ref)}"` },
  ];
  const line = (c: (typeof candidates)[number], i: number) =>
    `  ${i + 1}  ${escapeControl(c.run.alias)}  (${c.why})  ${runStatusWord(c.run.status)}${c.run.title ? `  "${escapeControl(c.run.title)}"` : ""}  updated ${age(c.run.updatedAt)} ago`;
  const listed = candidates.map(line).join("\n");
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    throw new CliError(
      `"${escapeControl(ref)}" names ${candidates.length} runs, so it names none:\n${listed}\nname run-${Number(ref)} by its whole name, or run the command on a terminal to choose`,
      EXIT.usage,
    );
  }
  resetTerminal();
  process.stdout.write(`"${escapeControl(ref)}" names ${candidates.length} runs:\n${listed}\n`);
  const keys = candidates.map((_, i) => String(i + 1));
  const key = await chooseKey(`Which run? [${keys.join("/")}, anything else: neither] `, keys, "");
  const picked = candidates[Number(key) - 1];
  if (!picked) throw new CliError(`no run chosen for "${escapeControl(ref)}": nothing done`, EXIT.failed);
  return picked.run.alias;
}

/** A number (run-N), the start of one alias, or the latest run. */
async function resolveLoose(client: SpoolClient, ref: string | undefined): Promise<string> {
  const { runs } = await client.call("run/list", { limit: 1000 });
  if (ref === undefined) {
    const latest = runs[0];
    if (!latest) throw new CliError("the project has no runs yet — start one with `spool act` or `spool ask`", EXIT.notFound);
    return latest.alias;
  }
  if (/^\d+$/.test(ref)) {
    const numbered = runs.find((r) => r.alias === `run-${Number(ref)}`);
    if (numbered) return numbered.alias;
  }
  const matches = runs.filter((r) => r.alias.startsWith(ref));
  if (matches.length === 1) return matches[0]!.alias;
  if (matches.length > 1) {
    throw new CliError(
      `"${escapeControl(ref)}" names ${matches.length} runs: ${matches
        .slice(0, 8)
        .map((r) => r.alias)
        .join(", ")}${matches.length > 8 ? ", …" : ""} — type more of it`,
      EXIT.usage,
    );
  }
  throw new CliError(`the project has no run "${escapeControl(ref)}" (see \`spool runs\`)`, EXIT.notFound);
}

export interface CommandRef {
  /** The log path (or the channel path given). */
  path: string;
  /** Its number in the run, from 1. */
  number: number;
  status: number;
}

/** The run's commands (log entries), oldest first, numbered from 1. */
export async function runCommands(client: SpoolClient, run: string) {
  const { entries } = await client.call("entry/list", { run, pattern: "log://*" });
  return entries.map((e, i) => ({ ...e, number: i + 1 }));
}

/** Resolves a command reference within a run (see above); `pending` picks among pending proposals only. */
export async function resolveCommand(client: SpoolClient, run: string, ref: string | undefined, options: { pending?: boolean } = {}): Promise<CommandRef> {
  if (ref !== undefined && /^[a-z][a-z0-9+.-]*:\/\//.test(ref)) {
    // A whole path: taken as it is (a channel path too); the command it names says whether it exists.
    const all = await runCommands(client, run);
    const found = all.find((c) => c.path === ref);
    return { path: ref, number: found?.number ?? 0, status: found?.status ?? -1 };
  }
  const all = await runCommands(client, run);
  const commands = options.pending ? all.filter((c) => c.status === ENTRY.proposed) : all;
  const what = options.pending ? "pending proposal" : "command";
  if (ref === undefined) {
    if (commands.length === 0) throw new CliError(`${run} has no ${what}s${options.pending ? "" : " yet"} (see \`spool show ${run}\`)`, EXIT.notFound);
    if (options.pending && commands.length > 1) {
      throw new CliError(
        `${run} has ${commands.length} pending proposals; name one:\n${commands.map((c) => `  ${c.number}  ${c.path}`).join("\n")}`,
        EXIT.usage,
      );
    }
    const latest = commands.at(-1)!;
    return { path: latest.path, number: latest.number, status: latest.status };
  }
  if (/^\d+$/.test(ref)) {
    const numbered = all.find((c) => c.number === Number(ref));
    if (!numbered) throw new CliError(`${run} has no command ${ref}: it has ${all.length} (see \`spool show ${run}\`)`, EXIT.notFound);
    return { path: numbered.path, number: numbered.number, status: numbered.status };
  }
  const matches = commands.filter((c) => c.path.slice("log://".length).split("/").at(-1)!.startsWith(ref) || c.path.includes(ref));
  if (matches.length === 1) return { path: matches[0]!.path, number: matches[0]!.number, status: matches[0]!.status };
  if (matches.length > 1) {
    throw new CliError(
      `"${escapeControl(ref)}" names ${matches.length} ${what}s of ${run}:\n${matches.map((c) => `  ${c.number}  ${c.path}`).join("\n")}\nuse the number or more of the path`,
      EXIT.usage,
    );
  }
  throw new CliError(`${run} has no ${what} matching "${escapeControl(ref)}" (see \`spool show ${run}\`)`, EXIT.notFound);
}
