import type { SpoolClient } from "../client/spool-client.js";
import { ENTRY } from "../protocol/status.js";
import { escapeControl } from "./common.js";
import { CliError, EXIT } from "./errors.js";

/**
 * Short references, as git, gh and kubectl take them.
 *
 * A run: its alias; a number N (the run called run-N); or the start of one alias (unique). Omitted: the
 * project's latest run.
 *
 * A command of a run: its log path (log://turn_1/sh/make) or a channel path (sh://turn_1/make_1); a number N
 * (the run's Nth command, as `spool show` and `spool entries` number them); or part of its path (`make`,
 * `turn_2/sh/npm`), unique among the run's commands. Omitted: the run's latest command.
 */
export async function resolveRun(client: SpoolClient, ref: string | undefined): Promise<string> {
  if (ref !== undefined) {
    const exact = await client.call("run/get", { run: ref }).catch(() => null);
    if (exact) return exact.run.alias;
  }
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
