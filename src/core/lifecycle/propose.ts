import { keyWords, targetKey } from "../../protocol/pool-keys.js";
import { loaderVariables, loaderVariablesMessage, type NetworkKind, type SandboxModeName } from "../../protocol/sandbox.js";
import type { PoolFact, RunnerClaim } from "../../protocol/views.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { SpoolError } from "../../rpc/errors.js";
import type { SandboxInfo } from "../../runners/sandbox/sandbox.js";
import type { EntryRow, RunRow } from "../../store/schema.js";
import { whoOf } from "../activity/audit.js";
import { describeRule, ruleFor, ruleResolver, ruleSetter } from "../allow-rules.js";
import type { ProposalInput } from "../deps.js";
import { insertUnderFreeSlug } from "../producers/slug.js";
import { invalid } from "../refusals.js";
import { LATE_REVOKED_RESOLVER, REVOCATION, revokedReason } from "../resolvers.js";
import { poolFact, poolSandbox, poolTarget } from "../runners/pools.js";
import { noEgress, refuseSandbox, runnerClaim } from "../runners/registry.js";
import { confineCwd } from "../sandbox/cwd.js";
import { egressFor } from "../sandbox/egress.js";
import { sandboxFor } from "../sandbox/mode.js";
import { viewFact } from "../sandbox/view.js";
import { ENTRY } from "../status.js";
import { producerWire } from "../views.js";
import { acceptAs, poolMembers, reject } from "./decide.js";
import type { Stage } from "./stage.js";

/** propose: the log entry at 202, `run/proposal` to every connection of the project. */
export async function propose(stage: Stage, project: ProjectRef, run: RunRow, input: ProposalInput): Promise<EntryRow> {
  const { deps } = stage;
  const producer = registeredProducer(stage, input.tool);
  // Fair shares first: a proposal past its principal's or its run's bound stores nothing and costs two kept counts (migration 021).
  const principal = whoOf(input.proposedBy).principal;
  await stage.shares.admit(principal, run);
  const command = await filteredCommand(deps, project, input);
  const target = await resolveTarget(stage, project, input, producer);
  // Counted toward the principal's minute now that nothing refuses it: a refused proposal costs no count.
  stage.shares.count(principal);
  const row = await insertProposal(deps, project, run, input, producer.tool, command, target, principal);
  deps.observer?.proposed(project, run, row, input.traceparent);
  stage.effects.proposed(project, run, row, input.proposedBy, input.transport ?? null);
  // Its principal revoked while this handler was under way, after the revocation read the waiting proposals (it revokes
  // first, then reads: Principals.revoke): withdrawn here, as the revocation would have, before any rule may accept it.
  // Looked up only for a principal revoked lately (revocations.ts): other proposals cost no query.
  if (stage.revocations.has(principal) && (await deps.repos.principals.principalRevoked(principal)))
    return withdrawAsRevoked(stage, project, run, row, principal);
  const decided = await acceptByRule(stage, project, run, row, input, target);
  if (decided) return decided;
  stage.effects.announceProposal(project, run, row);
  await stage.effects.hookStatus(project, run, row, null);
  return row;
}

type Producer = NonNullable<ReturnType<Stage["producers"]["get"]>>;

/** The producer registered for `tool`; an unknown tool is refused with the registered ones named. */
function registeredProducer(stage: Stage, tool: string): Producer {
  const producer = stage.producers.get(tool);
  if (!producer)
    throw invalid(
      "tool",
      `unknown tool "${tool}"; registered: ${stage.producers
        .list()
        .map((p) => p.tool)
        .join(", ")}`,
    );
  return producer;
}

/** The command, cwd and environment as the `proposal:create` filters leave them, the cwd confined to the project. */
interface FilteredCommand {
  command: string;
  cwd: string;
  env: Record<string, string>;
}

/** Runs the `proposal:create` filters, confines the cwd they leave and refuses loader variables in the environment. */
async function filteredCommand(deps: Stage["deps"], project: ProjectRef, input: ProposalInput): Promise<FilteredCommand> {
  const allowOutside = deps.config.limits.allowCwdOutsideRoot;
  const filtered = await deps.applyFilter("proposal:create", {
    tool: input.tool,
    command: input.command,
    cwd: confineCwd(project, input.cwd, allowOutside),
    env: input.env ?? {},
  });
  const cwd = confineCwd(project, filtered.cwd ?? undefined, allowOutside);
  // Nothing that makes the loader run code of the proposal's choosing, before any sandbox exists (or in none).
  const loader = loaderVariables(filtered.env);
  if (loader.length > 0)
    throw new SpoolError("INVALID_PARAMS", `Invalid params: ${loaderVariablesMessage(loader)}`, {
      issues: [{ path: "env", message: loaderVariablesMessage(loader) }],
      names: loader,
    });
  return { command: filtered.command, cwd, env: filtered.env };
}

/** Where a proposal goes and what it is shown with there: its runner (or pool), sandbox, network and view. */
interface ProposalTarget {
  pool: Awaited<ReturnType<typeof proposedPool>> | null;
  /** The runner it names (a pool: the pool as one runner would say it). */
  proposed: ProposedRunner | undefined;
  /** Named none: the runner a plain accept sends it to. */
  defaultRunner: string | null;
  sandbox: Awaited<ReturnType<typeof sandboxFor>>;
  egress: ReturnType<typeof egressFor>;
  claim: RunnerClaim | null;
  network: NetworkKind | "allowlist" | undefined;
  view: ReturnType<typeof viewFact>;
  runnerServer: Awaited<ReturnType<typeof runnerServerOf>>;
}

/** Resolves the proposal's runner or pool, its sandbox and network, refusing what its runner could never run. */
async function resolveTarget(stage: Stage, project: ProjectRef, input: ProposalInput, producer: Producer): Promise<ProposalTarget> {
  const { deps, runners } = stage;
  // A pool: its runners now (on every server), what they have in common, recorded as the `pool` fact (SPEC §7 "Pools").
  const pool = input.runner !== undefined && typeof input.runner !== "string" ? await proposedPool(stage, project, input.runner) : null;
  const proposed = typeof input.runner === "string" ? await proposedRunner(stage, project, input.runner) : (pool?.runner ?? undefined);
  const sandbox = await sandboxFor(deps.config, runners, project, producer, input.sandbox, proposed);
  // Network mode allowlist: the project's hosts and those asked beyond them, shown as facts (core/sandbox/egress.ts).
  const egress = egressFor(deps.config, project.name, sandbox.mode, input.allow_hosts);
  // Proposed for a runner that could never run it in its mode: it could only be rejected (an accept may not pick another runner).
  if (proposed?.sandbox)
    refuseSandbox({ name: proposed.name, sandbox: proposed.sandbox }, { readOnly: sandbox.mode === "read-only", mode: sandbox.mode, egress: egress !== null });
  // Named none: the runner a plain accept (or a rule) sends it to is resolved now, recorded and shown (SPEC §5, "always allow").
  const defaultRunner = proposed ? null : await projectDefaultRunner(stage, project);
  const goesToDefault = !proposed && defaultRunner !== null ? await runnerNamed(stage, project, defaultRunner) : undefined;
  const goesToInfo = proposed ? proposed.sandbox : (goesToDefault?.sandbox ?? null);
  // Who vouches for the sandbox and network shown: the server (its embedded runner) or the principal that attached a remote one.
  const claim = pool ? null : proposed ? (proposed.claim ?? null) : (goesToDefault?.claim ?? null);
  // Goes to a runner of this server that cannot enforce the list: refused now, never run unrestricted.
  if (egress && goesToDefault?.sandbox && !goesToDefault.sandbox.egress) throw noEgress({ name: goesToDefault.name, sandbox: goesToDefault.sandbox });
  const network = egress ? "allowlist" : networkFact(sandbox.mode, deps.config.sandboxNetwork, goesToInfo);
  // What it sees (read-only, workspace-write): what its runner builds and what the configuration adds, shown and then built.
  const view = viewFact(deps.config, project.name, sandbox.mode, goesToInfo);
  // Several servers on the database: whose runner it is, decided now and shown (`local@host:7420`); an accept anywhere keeps it.
  const runnerServer = pool
    ? null
    : await runnerServerOf(stage, project, proposed?.name ?? defaultRunner, proposed ? proposed.here : goesToDefault?.here === true);
  return { pool, proposed, defaultRunner, sandbox, egress, claim, network, view, runnerServer };
}

/** Stores the log entry at 202 under a free slug, with every fact a person is shown before deciding. */
async function insertProposal(
  deps: Stage["deps"],
  project: ProjectRef,
  run: RunRow,
  input: ProposalInput,
  tool: string,
  command: FilteredCommand,
  target: ProposalTarget,
  principal: string,
): Promise<EntryRow> {
  const { pool, proposed, defaultRunner, sandbox, egress, claim, network, view, runnerServer } = target;
  const now = Date.now();
  return insertUnderFreeSlug(deps.repos.entries, run, tool, command.command, (slug) => ({
    run_id: run.id,
    scheme: "log",
    turn: run.turn,
    status: ENTRY.proposed,
    attributes: JSON.stringify({
      tool,
      command: command.command,
      root: project.root,
      cwd: command.cwd,
      env: command.env,
      // No limit proposed: the server's default for its kind, recorded so every client shows the real duration.
      ...(input.timeout_ms
        ? { timeoutMs: input.timeout_ms }
        : { defaultTimeoutMs: input.background ? deps.config.backgroundTimeoutMs : deps.config.commandTimeoutMs }),
      ...(input.tty ? { tty: { cols: input.tty.cols, rows: input.tty.rows } } : {}),
      ...(input.background ? { background: true } : {}),
      ...(pool ? { pool: pool.fact } : proposed ? { runner: proposed.name } : defaultRunner !== null ? { defaultRunner } : {}),
      ...(claim ? { runnerClaim: claim } : {}),
      ...(runnerServer ? { runnerServer } : {}),
      slug,
      readOnly: sandbox.mode === "read-only",
      sandbox: sandbox.mode,
      ...(sandbox.mode === "workspace-write" ? { sandboxNetwork: deps.config.sandboxNetwork } : {}),
      ...(view ? { sandboxView: view } : {}),
      // Without a sandbox: who may accept it, shown with the mode (decide.ts refuses anyone else).
      ...(sandbox.mode === "full" ? { fullAcceptors: deps.config.sandboxFullAcceptors } : {}),
      ...(sandbox.reason ? { sandboxReason: sandbox.reason } : {}),
      ...(network ? { network } : {}),
      ...(egress ? { egress } : {}),
      proposedBy: input.proposedBy,
      ...input.extra,
    }),
    proposed_by: principal,
    created_at: now,
    updated_at: now,
  }));
}

/** Withdraws a proposal whose principal was revoked meanwhile, as the revocation would have; the entry as it is now. */
async function withdrawAsRevoked(stage: Stage, project: ProjectRef, run: RunRow, row: EntryRow, principal: string): Promise<EntryRow> {
  const options = { by: REVOCATION, resolver: LATE_REVOKED_RESOLVER, reason: revokedReason(principal) };
  // Withdrawn by the revocation as well (it read it after all): decided once, by whichever came first.
  await reject(stage, project, { run: run.alias, path: row.path }, options).catch((error: unknown) => {
    if (!(error instanceof SpoolError && error.errorName === "CONFLICT")) throw error;
  });
  return (await stage.deps.repos.entries.findEntryById(row.id)) ?? row;
}

/**
 * An "always allow" rule of the run that holds the proposal accepts it, nobody asked: the entry as it is then
 * (announced for a person when the rule could not accept it). Undefined when no rule holds it.
 */
async function acceptByRule(
  stage: Stage,
  project: ProjectRef,
  run: RunRow,
  row: EntryRow,
  input: ProposalInput,
  target: ProposalTarget,
): Promise<EntryRow | undefined> {
  const { deps } = stage;
  const { pool, proposed, defaultRunner, sandbox } = target;
  // A rule stored for commands in the configured mode does not let one that asks to leave the sandbox through unseen.
  const ruleApplies = !(input.sandbox === "full" && deps.config.sandbox !== "full");
  const goesTo = pool ? pool.key : (proposed?.name ?? defaultRunner);
  const { rule, near } = ruleApplies && goesTo !== null ? await ruleFor(deps.repos, { runId: run.id, facts: producerWire(row, []), runner: goesTo }) : {};
  // Asked about although a rule holds its command: which facts differ (a restart's runner with another network, …).
  if (near)
    deps.log.info(`${row.path}: ${describeRule(near.rule)} holds this command but not these facts (${near.differs.join("; ")}), so a person is asked`, {
      project: project.name,
      run: run.alias,
      path: row.path,
    });
  if (!rule) return undefined;
  // An "always allow" rule of the run matches: the server accepts it itself, and nobody is asked.
  await stage.effects.hookStatus(project, run, row, null);
  try {
    // In sandbox mode full, the rule accepts as the principal that set it, who must be one that may accept full now.
    const acceptor = sandbox.mode === "full" ? await ruleSetter(deps.repos, rule) : undefined;
    await acceptAs(stage, project, { run: run.alias, path: row.path }, { acceptor, resolver: ruleResolver(rule), resolvedBy: describeRule(rule), self: null });
    return (await deps.repos.entries.findEntryById(row.id)) ?? row;
  } catch (error) {
    // No runner can take it now (or it was decided meanwhile): it waits for a person like any other proposal.
    deps.log.warn(`rule #${rule.id} matched ${row.path} but could not accept it: ${error instanceof Error ? error.message : String(error)}`, {
      project: project.name,
      run: run.alias,
      path: row.path,
    });
    const current = await deps.repos.entries.findEntryById(row.id);
    if (current?.status !== ENTRY.proposed) return current ?? row;
    stage.effects.announceProposal(project, run, current);
    return current;
  }
}

/** A runner as a proposal records it: its name, its sandbox and its claim (null: not known), and whether it is this server's. */
interface ProposedRunner {
  name: string;
  sandbox: SandboxInfo | null;
  claim?: RunnerClaim;
  here: boolean;
}

/**
 * The runner `name` as a proposal records it: attached here (or the embedded one), or to another server sharing the
 * database, as that server's row says (its claim recorded all the same: an accept is held to it, and a runner another
 * principal attaches under the name later never takes it); undefined when neither.
 */
async function runnerNamed(stage: Stage, project: ProjectRef, name: string): Promise<ProposedRunner | undefined> {
  const here = await stage.runners.named(project.id, name);
  if (here) return { ...here, here: true };
  if (!stage.others?.shared) return undefined;
  const there = (await stage.others.runnersElsewhere(project.id)).find((r) => r.name === name);
  if (there)
    return {
      name,
      sandbox: there.sandbox,
      claim: runnerClaim({ embedded: false, attachedBy: there.attachedBy, sandbox: there.sandbox, root: there.root }),
      here: false,
    };
  // Listed by a server whose row says nothing of it (one from before pools): its sandbox is not known here.
  return (await stage.others.runnerServer(project.id, name)) !== null ? { name, sandbox: null, here: false } : undefined;
}

/**
 * The pool a proposal names, with what it records: the `pool` fact (NO_RUNNER when none of its runners is attached and
 * the configuration names no principals for it), its queue's key, and the pool as one runner would say it (its sandbox:
 * the weakest of its runners; unknown while none is attached).
 */
async function proposedPool(
  stage: Stage,
  project: ProjectRef,
  ref: { pool: string } | { labels: Record<string, string> },
): Promise<{ fact: PoolFact; key: string; runner: ProposedRunner }> {
  const target = poolTarget(stage.deps.config, ref);
  const fact = poolFact(stage.deps.config, project, target, await poolMembers(stage, project, target));
  const key = targetKey(target);
  return { fact, key, runner: { name: keyWords(key), sandbox: fact.attached > 0 ? poolSandbox(fact) : null, here: false } };
}

/**
 * The runner a proposal names: attached here (or the embedded one), or to another server sharing the
 * database. Anything else, another project's runners included, is NO_RUNNER.
 */
async function proposedRunner(stage: Stage, project: ProjectRef, name: string): Promise<ProposedRunner> {
  if (name === "self")
    throw invalid("runner", 'a proposal cannot name "self": it is the accepting connection, chosen by whoever accepts a proposal that names no runner');
  const found = await runnerNamed(stage, project, name);
  if (found) return found;
  const names = stage.runners.names(project.id);
  throw new SpoolError(
    "NO_RUNNER",
    `No runner named "${name}" is attached to project "${project.name}" (${names.length > 0 ? `attached: ${names.join(", ")}` : "none is attached"}); propose it for one of them, or for none`,
    { runner: name, runners: names },
  );
}

/**
 * With several servers sharing the database, the server whose runner `name` is: this one (`here`: attached here, or
 * its embedded runner), else the living server it is attached to; null with one server, or none found.
 */
async function runnerServerOf(stage: Stage, project: ProjectRef, name: string | null, here: boolean): Promise<{ id: number; label: string } | null> {
  const others = stage.others;
  if (!others?.shared || name === null) return null;
  const id = here ? others.serverId : await others.runnerServer(project.id, name);
  return id === null ? null : { id, label: await others.serverLabel(id) };
}

/**
 * The runner a plain accept of a proposal naming none goes to, as resolved when it is proposed: the project's
 * default runner (attached here, else to another server sharing the database), else the embedded one; null when
 * there is none.
 */
async function projectDefaultRunner(stage: Stage, project: ProjectRef): Promise<string | null> {
  const here = stage.runners.list(project.id).find((r) => r.default);
  if (here) return here.name;
  const there = stage.others?.shared ? await stage.others.defaultRunnerName(project.id) : null;
  return there ?? stage.runners.embeddedName;
}

/**
 * The command's network as its runner says (the `network` fact): none in read-only or with the network cut; in
 * workspace-write what the runner gives; in full a Docker runner's container network, else the machine's. Undefined: not known
 * (a runner of another server, or one that does not say).
 */
function networkFact(mode: SandboxModeName, networkOn: boolean, info: SandboxInfo | null): NetworkKind | undefined {
  if (mode === "read-only" || (mode === "workspace-write" && !networkOn)) return "none";
  if (!info) return undefined;
  if (mode === "workspace-write" || info.kind === "docker") return info.network;
  return "shared";
}
