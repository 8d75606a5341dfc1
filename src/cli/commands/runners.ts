import type { SpoolClient } from "../../client/spool-client.js";
import { keyWords } from "../../protocol/pool-keys.js";
import { type RunnerShown, runnerShown } from "../../protocol/shown-state.js";
import { commandOf, defineCommand, JSON_OPTION } from "../command-spec.js";
import { age, printRows, withClient } from "../common.js";
import { EXIT, usageError } from "../errors.js";

const RUNNERS_SPEC = defineCommand({
  name: "runners",
  usage: `spool runners [--json]
       spool runners pools [--json]
       spool runners queue [POOL] [--json]
       spool runners drain NAME [--wait]
       spool runners undrain NAME`,
  about: `The project's fleet, on every server sharing the database. First its pools
(each configured one, and any other with commands waiting): its runners, their
capacity together, what they run, the accepted commands waiting for one of
them, and how many drain. Then each runner: backend, whether it is the default
(implied: plain accepts go to it as no runner is the default), the sandbox
modes it gives, a workspace-write command's network there (own: outbound only;
shared: the runner machine's, its loopback ports too; none), the principal that
attached it (its name is that principal's), where it runs (the server it is
attached to and the machine), its state (claiming; draining: it takes nothing
new; gone: its name held for it), its load (running of its capacity) and pools.
--json: the runners as runner/list gives them (pools --json: the pools).

queue lists the commands waiting for a runner, in the order they are taken
(POOL: one queue: pool:linux, or linux for short; labels:os=linux; runner:NAME). drain stops a runner from taking new work
while what it runs finishes (for an upgrade or a scale-down; --wait returns
once it runs nothing); undrain lets it claim again.`,
  connects: true,
  maxArgs: 2,
  options: {
    wait: { type: "boolean", help: "drain: return once the runner runs nothing" },
    ...JSON_OPTION,
  },
});

export const RUNNERS = commandOf(RUNNERS_SPEC, async (values, args) => {
  const [sub = "list", arg] = args;
  const one = (what: string) => {
    if (!arg) throw usageError(`spool runners ${sub} takes ${what} (see \`spool help runners\`)`);
    return arg;
  };
  if ((sub === "list" || sub === "pools") && arg !== undefined) throw usageError(`spool runners ${sub} takes no argument`);
  if (values.wait && sub !== "drain") throw usageError("--wait goes with spool runners drain NAME");
  await withClient(values, async (client) => {
    switch (sub) {
      case "list":
        return list(client, values.json);
      case "pools":
        return pools(client, values.json, true);
      case "queue":
        return queue(client, arg === undefined || arg.includes(":") ? arg : `pool:${arg}`, values.json);
      case "drain":
      case "undrain":
        return drain(client, one("a runner's NAME"), sub === "drain", values.wait === true);
      default:
        throw usageError(`spool runners: unknown subcommand "${sub}" (list, pools, queue, drain or undrain)`);
    }
  });
  return EXIT.ok;
});

/** The pools, then the runners (as runner/list says them, in the words every client uses). */
async function list(client: SpoolClient, json: boolean | undefined): Promise<void> {
  const { runners } = await client.call("runner/list", {});
  if (!json) await pools(client, false, false);
  printRows(
    json
      ? runners
      : runners.map((r) => {
          // The words every client uses (src/protocol/shown-state.ts): default yes only when it is; implied when plain accepts go to it.
          const shown = runnerShown(r, runners);
          return {
            name: r.name,
            backend: r.backend,
            default: shown.defaultWord === "fallback" ? "implied" : shown.defaultWord,
            sandbox: shown.sandboxWord,
            network: shown.networkWord,
            "attached by": shown.attachedByWord,
            where: shown.whereWord,
            state: liveness(r, shown),
            load: shown.loadWord,
            pools: r.pools?.join(", ") ?? "",
            description: r.description,
          };
        }),
    ["name", "backend", "default", "sandbox", "network", "attached by", "where", "state", "load", "pools", "description"],
    json,
    // Where commands run (the server, the host, the project root) is never cut short.
    ["where"],
  );
}

/** The state column: runnerShown's word (what `--json`'s `state` says), with how long it has been attached, or its name held. */
function liveness(r: { attachedAt: number; heldUntil: number | null }, shown: RunnerShown): string {
  if (shown.state === "gone") return r.heldUntil ? `gone (name held ${Math.max(0, Math.ceil((r.heldUntil - Date.now()) / 1000))}s)` : "gone";
  if (shown.firstUse) return shown.stateWord;
  return `${shown.stateWord}, attached ${age(r.attachedAt)} ago`;
}

/** Per pool: runners, capacity, running, queued, draining; `always`: say so when there is none (else print nothing). */
async function pools(client: SpoolClient, json: boolean | undefined, always: boolean): Promise<void> {
  const { pools } = await client.call("runner/pools", {});
  if (json) return printRows(pools, [], true);
  if (pools.length === 0) {
    if (always) process.stdout.write('no pools: none is configured (config.json "pools") and no command waits for a runner\n');
    return;
  }
  printRows(
    pools.map((p) => ({
      pool: keyWords(p.key),
      runners: p.runners.length === 0 ? "none attached" : p.runners.join(", "),
      capacity: p.capacity === null ? "no limit" : p.capacity,
      running: p.running,
      queued: p.queued,
      draining: p.draining,
      "waiting since": p.oldestQueuedAt === null ? "" : `${age(p.oldestQueuedAt)} ago`,
    })),
    ["pool", "runners", "capacity", "running", "queued", "draining", "waiting since"],
    false,
  );
  if (!always) process.stdout.write("\n");
}

/** The commands waiting for a runner, in the order they are taken. */
async function queue(client: SpoolClient, pool: string | undefined, json: boolean | undefined): Promise<void> {
  const { queued, total } = await client.call("runner/queue", { ...(pool ? { pool } : {}), limit: 1000 });
  if (json) return printRows(queued, [], true);
  if (queued.length === 0) {
    process.stdout.write(`no command waits for a runner${pool ? ` in ${pool}` : ""}\n`);
    return;
  }
  printRows(
    queued.map((q) => ({ "#": q.position, pool: keyWords(q.pool), run: q.run, path: q.path, since: `${age(q.since)} ago`, command: q.command })),
    ["#", "pool", "run", "path", "since", "command"],
    false,
  );
  if (total > queued.length) process.stdout.write(`… and ${total - queued.length} more\n`);
}

/** Drains a runner (or lets it claim again); --wait: returns once it runs nothing, told by the commands' ends. */
async function drain(client: SpoolClient, name: string, draining: boolean, wait: boolean): Promise<void> {
  const result = await client.call("runner/drain", { name, drain: draining });
  const running = (n: number) => `${n} command${n === 1 ? "" : "s"} running`;
  process.stdout.write(
    draining ? `draining ${name}: it takes nothing new; ${running(result.running)}\n` : `${name} claims again (${running(result.running)})\n`,
  );
  if (!draining || !wait) return;
  // A command's end anywhere in the project (every server tells this one) is when the runner's count may have gone down.
  let wake = () => {};
  const off = client.on("stream/finished", () => wake());
  try {
    for (let left = result.running; left > 0; ) {
      const ended = new Promise<void>((resolve) => {
        wake = resolve;
      });
      const now = (await client.call("runner/list", {})).runners.find((r) => r.name === name);
      left = now && now.state !== "gone" ? now.running : 0;
      if (left > 0) await ended;
    }
  } finally {
    off();
  }
  process.stdout.write(`${name} is drained: it runs nothing\n`);
}
