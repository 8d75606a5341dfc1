import { type SpoolClient, SpoolRpcError } from "../../client/spool-client.js";
import { pausedWords, raiseArgument, raiseStep } from "../../protocol/agent-words.js";
import { deadlineWords } from "../../protocol/deadline-words.js";
import type { ResultOf } from "../../protocol/methods/index.js";
import { keyWords } from "../../protocol/pool-keys.js";
import { defaultRunnerName, factsText, proposalFacts } from "../../protocol/proposal-facts.js";
import { ENTRY, RUN } from "../../protocol/status.js";
import { commandOf, defineCommand, JSON_OPTION } from "../command-spec.js";
import { age, type ClientFlags, connectIfProject, escapeControl, forEachProject, palette, printRows, withClient } from "../common.js";
import { CliError, EXIT, usageError } from "../errors.js";
import { REFS_HELP, resolveCommand, resolveRun, resolveRunRef, runCommands } from "../refs.js";
import { resetTerminal } from "../terminal-writer.js";
import { confirmKey } from "../typed-input.js";

/** The commands about decisions: what is pending, approving and rejecting it. */

type Pending = ResultOf<"proposal/list">["proposals"][number];

/** A project's pending proposals (a run's, with `run`), oldest first. */
async function pendingIn(client: SpoolClient, run?: string): Promise<Pending[]> {
  const proposals: Pending[] = [];
  let after: number | undefined;
  // Pages of 200; a person reads no more than a few pages, so 10 is the cap.
  for (let page = 0; page < 10; page++) {
    const reply = await client.call("proposal/list", { ...(run ? { run } : {}), limit: 200, ...(after ? { after } : {}) });
    proposals.push(...reply.proposals);
    if (reply.next === null) break;
    after = reply.next;
  }
  return proposals;
}

const PENDING_SPEC = defineCommand({
  name: "pending",
  usage: "spool pending [--run RUN | --all] [--json]",
  about:
    "Lists pending proposals, oldest first: the project's (every project's with --all, or outside any\nproject), with run, path and age, then what every client shows before a decision — tool, command,\nworking directory, extra environment, terminal, runner, sandbox mode, background, time limit — with\ncontrol characters shown escaped. Decide with `spool approve` or `spool reject` (alone when only\none is pending).",
  connects: true,
  maxArgs: 0,
  options: {
    run: { type: "string", arg: "RUN", help: "only this run's" },
    all: { type: "boolean", help: "every project's" },
    ...JSON_OPTION,
  },
});

export const PENDING = commandOf(PENDING_SPEC, async (values) => {
  if (values.all && values.run) throw usageError("--run and --all exclude each other: --run names a run of this project");
  const groups: { project: string | null; proposals: Pending[]; defaultRunner: string | null; numbers: Map<string, number> }[] = [];
  // Runs paused at their budget wait for a person too.
  const paused: { project: string | null; run: ResultOf<"run/list">["runs"][number] }[] = [];
  const collect = async (client: SpoolClient, project: string | null, run?: string) => {
    for (const r of (await client.call("run/list", { status: RUN.paused })).runs) if (!run || r.alias === run) paused.push({ project, run: r });
    const proposals = await pendingIn(client, run);
    if (proposals.length === 0) return;
    // Each proposal's number in its run (as spool show numbers them): the exact `spool approve RUN N` to give.
    const numbers = new Map<string, number>();
    for (const name of new Set(proposals.map((p) => p.run))) {
      for (const c of await runCommands(client, name)) numbers.set(`${name} ${c.path}`, c.number);
    }
    groups.push({ project, proposals, defaultRunner: defaultRunnerName((await client.call("runner/list", {})).runners), numbers });
  };
  let across = Boolean(values.all);
  if (values.run) {
    await withClient(values, async (client) => collect(client, null, await resolveRun(client, values.run)));
  } else if (!across) {
    const { client, project, here } = await connectIfProject(values);
    try {
      if (project) await collect(client, null);
      else if (!here) across = true;
    } finally {
      client.close();
    }
  }
  if (across) await forEachProject(values, (client, name) => collect(client, name));
  const all = groups.flatMap((g) => g.proposals.map((p) => ({ ...(g.project ? { project: g.project } : {}), ...p })));
  if (values.json) {
    printRows([...all, ...paused.map((p) => ({ ...(p.project ? { project: p.project } : {}), run: p.run.alias, paused: p.run.paused }))], [], true);
    return EXIT.ok;
  }
  const colours = palette();
  for (const { project, run } of paused) {
    const ref = `${project ? `--project ${escapeControl(project)} ` : ""}${escapeControl(run.alias)}`;
    process.stdout.write(
      `${colours.bold(`${project ? `${escapeControl(project)}  ` : ""}${escapeControl(run.alias)}`)}  ${colours.yellow("paused")}: ${run.paused ? pausedWords(run.paused) : "at its budget"}\n` +
        `${colours.dim(`  spool budget ${ref} ${run.paused ? raiseArgument(run.paused.kind, raiseStep(run.paused)) : "+…"}   or   spool abort ${ref}`)}\n\n`,
    );
  }
  if (all.length === 0 && paused.length > 0) return EXIT.ok;
  if (all.length === 0) {
    process.stdout.write(`nothing is pending${across ? " in any project" : ""}\n`);
    return EXIT.ok;
  }
  // Facts are drawn on a reset terminal: nothing printed before (a command's output) sets how they show.
  resetTerminal();
  const blocks = groups.flatMap((g) =>
    g.proposals.map((p) => {
      const ref = `${g.project ? `--project ${escapeControl(g.project)} ` : ""}${escapeControl(p.run)} ${g.numbers.get(`${p.run} ${p.path}`) ?? escapeControl(p.path)}`;
      const decide = colours.dim(`  spool approve ${ref}   or   spool reject ${ref}`);
      return `${colours.bold(`${g.project ? `${escapeControl(g.project)}  ` : ""}${escapeControl(p.run)}  ${escapeControl(p.path)}`)}  ${colours.dim(`proposed ${age(p.createdAt)} ago${deadline(p.expiresAt)}`)}\n${factsText(p.producer, { defaultRunner: g.defaultRunner, indent: "  " })}\n${decide}\n`;
    }),
  );
  process.stdout.write(blocks.join("\n"));
  return EXIT.ok;
});

/** `, rejected by the deadline in 4 min`: when a pending proposal's deadline falls; nothing when it has none. */
function deadline(expiresAt: number | null | undefined): string {
  const words = deadlineWords(expiresAt);
  return words ? `, ${words}` : "";
}

/** A CONFLICT from run/resolve, told as what happened to the proposal. */
async function decidedAlready(client: SpoolClient, run: string, path: string, error: unknown): Promise<never> {
  if (!(error instanceof SpoolRpcError) || error.errorCode !== "CONFLICT") throw error;
  const [entry] = (await client.call("entry/list", { run, pattern: path })).entries;
  const p = entry?.producer ?? null;
  const by = p?.resolvedBy ? ` by ${escapeControl(p.resolvedBy)}` : "";
  const reason = p?.reason ? `: ${escapeControl(p.reason)}` : "";
  const word = p ? (p.decision === "accept" ? "accepted" : p.state) : "decided";
  throw new CliError(`${path} is no longer pending: it was ${word}${by}${reason}`, EXIT.failed);
}

/**
 * The proposal `spool approve` / `spool reject` decide: RUN and CMD resolved as short references; with neither,
 * the one pending proposal of the project (of every project outside one); with RUN alone, that run's only one.
 * A proposal not named exactly (see `exactly`) is shown before it is decided (issue 23: what runs is what a
 * person saw): approve asks for one key on a terminal and refuses without one; reject shows what it rejects.
 */
async function decide(
  command: "approve" | "reject",
  flags: ClientFlags,
  refs: string[],
  body: (client: SpoolClient, run: string, path: string, facts?: number) => Promise<number>,
): Promise<number> {
  if (refs.length > 0) {
    return withClient(flags, async (client) => {
      // A run picked among several at a terminal was not named by RUN: its proposal is shown before it is decided.
      const { alias: run, chosen } = await resolveRunRef(client, refs[0]);
      const target = await resolveCommand(client, run, refs[1], { pending: refs[1] === undefined });
      const shown = chosen || !exactly(refs, run, target.path) ? await showUnnamed(command, client, null, run, target.path) : undefined;
      return body(client, run, target.path, shown);
    });
  }
  const found: { project: string | null; run: string; path: string }[] = [];
  const { client, project, here } = await connectIfProject(flags);
  try {
    if (project) found.push(...(await pendingIn(client)).map((p) => ({ project: null, run: p.run, path: p.path })));
  } finally {
    client.close();
  }
  if (!here) {
    await forEachProject(flags, async (c, name) => {
      found.push(...(await pendingIn(c)).map((p) => ({ project: name, run: p.run, path: p.path })));
    });
  }
  if (found.length === 0) throw new CliError(`nothing is pending${here ? " in this project" : ""}`, EXIT.notFound);
  if (found.length > 1) {
    throw new CliError(
      `${found.length} proposals are pending; name one (\`spool pending\` shows them):\n${found
        .map((f) => `  spool ${command} ${f.project ? `--project ${escapeControl(f.project)} ` : ""}${escapeControl(f.run)} ${escapeControl(f.path)}`)
        .join("\n")}`,
      EXIT.usage,
    );
  }
  const only = found[0]!;
  return withClient(only.project ? { ...flags, project: only.project } : flags, async (c) => {
    return body(c, only.run, only.path, await showUnnamed(command, c, only.project, only.run, only.path));
  });
}

/**
 * Whether RUN CMD name one proposal whatever else arrives: RUN its whole name (or N for run-N) and CMD its
 * number in the run or its whole path. A prefix, a part of a path or an omitted CMD is resolved among what is
 * there now, and a proposal arriving meanwhile could be the one it finds.
 */
function exactly(refs: string[], run: string, path: string): boolean {
  const [runRef, cmdRef] = refs;
  const runExact = runRef === run || (runRef !== undefined && /^\d+$/.test(runRef) && run === `run-${Number(runRef)}`);
  return runExact && cmdRef !== undefined && (cmdRef === path || /^\d+$/.test(cmdRef));
}

/**
 * A proposal found rather than named: its facts, as `spool pending` shows them. Approve then asks for one key
 * pressed now (input typed before is thrown away); without a terminal to ask on it refuses, naming the exact
 * reference to give. Reject goes on (rejecting runs nothing). A proposal no longer pending goes on too: deciding
 * it fails with what happened to it.
 */
async function showUnnamed(command: "approve" | "reject", client: SpoolClient, project: string | null, run: string, path: string): Promise<number | undefined> {
  const entry = await client.call("entry/get", { run, path });
  if (entry.status !== ENTRY.proposed) return undefined;
  const { runners } = await client.call("runner/list", {});
  const shown = proposalFacts(entry.attributes);
  const facts = factsText(shown, { defaultRunner: defaultRunnerName(runners), indent: "  " });
  const number = (await runCommands(client, run)).find((c) => c.path === path)?.number;
  const where = `${project ? `${escapeControl(project)}  ` : ""}${escapeControl(run)}  ${escapeControl(path)}`;
  resetTerminal();
  if (command === "reject") {
    process.stdout.write(`${palette().bold(where)}\n${facts}\n`);
    return undefined;
  }
  const exact = `spool approve ${project ? `--project ${escapeControl(project)} ` : ""}${escapeControl(run)} ${number ?? escapeControl(path)}`;
  if (!process.stdin.isTTY) {
    throw usageError(
      `spool approve: the proposal was not named exactly, so it is not accepted unseen (another may have arrived since you looked):\n${where}\n${facts}\nto accept this one, name it: \`${exact}\` (or its whole path)`,
    );
  }
  process.stdout.write(`${palette().bold(where)}\n${facts}\n`);
  if (!(await confirmKey("Accept this command? [y/N] "))) throw new CliError(`not accepted; \`${exact}\` accepts it`, EXIT.failed);
  // The facts just shown: if the server changed them meanwhile (its runner's server stopped), the accept is refused.
  return shown.factsRevision ?? 1;
}

const APPROVE_SPEC = defineCommand({
  name: "approve",
  usage: "spool approve [RUN [CMD]] [--runner NAME]",
  about: `Accepts a pending proposal (see spool pending); its runner starts the command. Alone, it accepts
the only pending proposal (an error naming them when there are several); with RUN alone, that
run's only one. A proposal not named exactly (RUN's whole name or number and CMD's number or whole
path) is shown first and accepted only when you press y on the terminal; without a terminal it is
refused, naming the exact reference to give (another proposal may have arrived since you looked).

${REFS_HELP}`,
  connects: true,
  maxArgs: 2,
  options: { runner: { type: "string", arg: "NAME", help: "run it on this runner (default: the project's default runner)" } },
});

export const APPROVE = commandOf(APPROVE_SPEC, async (values, rest) => {
  return decide("approve", values, rest, async (client, run, path, facts) => {
    const reply = await client
      .call("run/resolve", { run, path, decision: "accept", ...(values.runner ? { runner: values.runner } : {}), ...(facts ? { facts } : {}) })
      .catch((error: unknown) => unknownRunner(client, values.runner, error))
      .catch((error: unknown) => decidedAlready(client, run, path, error));
    // Every runner of its pool busy: it waits in the pool's queue (spool runners queue), not refused.
    const where = reply.queued ? `queued, ${reply.queued.position} in line for ${keyWords(reply.queued.pool)}` : `running on ${reply.runner ?? "?"}`;
    process.stdout.write(`${palette().green("accepted")} ${path}: ${where}; follow it with \`spool tail ${run} -f\`\n`);
    return EXIT.ok;
  });
});

/** --runner naming no runner of the project: say which there are. */
async function unknownRunner(client: SpoolClient, runner: string | undefined, error: unknown): Promise<never> {
  if (!runner || !(error instanceof SpoolRpcError) || !["NO_RUNNER", "NOT_FOUND"].includes(error.errorCode ?? "")) throw error;
  const { runners } = await client.call("runner/list", {});
  if (runners.some((r) => r.name === runner)) throw error;
  const names = runners.map((r) => r.name);
  throw new CliError(
    `the project has no runner "${escapeControl(runner)}"${names.length ? ` — it has: ${names.join(", ")} (spool runners)` : " — it has none; attach one with `spool runner`"}`,
    EXIT.notFound,
  );
}

const REJECT_SPEC = defineCommand({
  name: "reject",
  usage: "spool reject [RUN [CMD]] [--reason TEXT]",
  about: `Rejects a pending proposal (see spool pending); the model is told why. Alone, it rejects the only
pending proposal; with RUN alone, that run's only one. A proposal not named exactly is shown as it is
rejected.

${REFS_HELP}`,
  connects: true,
  maxArgs: 2,
  options: { reason: { type: "string", arg: "TEXT", help: "why (the model reads it)" } },
});

export const REJECT = commandOf(REJECT_SPEC, async (values, rest) => {
  return decide("reject", values, rest, async (client, run, path) => {
    await client
      .call("run/resolve", { run, path, decision: "reject", reason: values.reason ?? "rejected from the spool CLI" })
      .catch((error: unknown) => decidedAlready(client, run, path, error));
    process.stdout.write(`${palette().yellow("rejected")} ${path}\n`);
    return EXIT.ok;
  });
});
