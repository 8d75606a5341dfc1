import { z } from "zod";
import { request } from "../define.js";
import { PoolInfo, QueuedCommand } from "../pools.js";
import { RunnerAttachParams, RunnerAttachResult, RunnerInfo, RunnerName, RunnerState } from "../runner.js";

export const runnerAttach = request({
  name: "runner/attach",
  role: "runner",
  description:
    "Turns this connection into a runner of the project and returns its resume token. After a reconnect the runner attaches again with `resumeToken` and `resume` (the producers it still executes); the reply says which are still open (with their last stored seq per channel) and which were finished meanwhile.",
  params: RunnerAttachParams,
  result: RunnerAttachResult,
});

export const runnerList = request({
  name: "runner/list",
  role: "viewer",
  description:
    "The project's runners, on every server sharing the database: attached ones (`claiming`, or `draining`), ones that went away while they had work (`gone`, their name held for them until `heldUntil`), and the embedded local runner when the server runs one; each with its load (`running` of `capacity`). Each entry's `sandbox.modes` lists the sandbox modes (read-only, workspace-write, full) it can run a command in.",
  params: z.strictObject({}),
  result: z.object({ runners: z.array(RunnerInfo) }),
});

export const runnerDrain = request({
  name: "runner/drain",
  role: "runner",
  description:
    "Stops a runner from taking new work (`draining`) while the commands it runs finish, for an upgrade or a scale-down; `drain: false` lets it claim again. Held across its reconnects, to any server of the database; a fresh start of the runner under its name claims again. A credential below person (a runner's, in its preStop hook) drains only the runners its principal attached (NOT_OWNER otherwise); a person or an admin any runner of the project.",
  params: z.strictObject({
    name: RunnerName.describe("The runner"),
    drain: z.boolean().optional().describe("false: take work again; default true"),
  }),
  result: z.object({
    name: z.string(),
    state: RunnerState,
    running: z.number().int().describe("Commands it runs now; a drained runner is idle once this is 0"),
  }),
});

export const runnerPools = request({
  name: "runner/pools",
  role: "viewer",
  description:
    "The fleet, per pool: its runners on every server sharing the database, their capacity, the commands they run, the accepted commands waiting for one of them, and how many drain. Lists the configured pools (config.json `pools`), and every other pool (a label selector, a runner's name) that has commands waiting.",
  params: z.strictObject({}),
  result: z.object({ pools: z.array(PoolInfo) }),
});

export const runnerQueue = request({
  name: "runner/queue",
  role: "viewer",
  description:
    "The project's accepted commands that wait for a runner, in the order runners take them: each with its queue (pool), its position there and when it was accepted. stream/cancel stops one.",
  params: z.strictObject({
    pool: z
      .string()
      .max(400)
      .optional()
      .describe(
        "Only this queue (`pool:NAME`, `labels:k=v,…`, `runner:NAME`); another form is INVALID_PARAMS, a pool the configuration does not name (and no command waits in) NOT_FOUND",
      ),
    limit: z.number().int().min(1).max(1000).optional().describe("At most this many (default 100)"),
  }),
  result: z.object({ queued: z.array(QueuedCommand), total: z.number().int().describe("How many wait, in the queue asked for or in all") }),
});
