import { z } from "zod";

/*
 * Runner pools on the wire (SPEC §7 "Pools"): the labels a runner attaches with, the selectors and configured pool
 * names a proposal or an accept may give instead of one runner, and the fleet view. The names and keys are in
 * pool-keys.ts (no zod: the web page bundles it).
 */

/** Labels a runner may carry, at most. */
export const MAX_RUNNER_LABELS = 32;
/** Labels one selector may require, at most. */
export const MAX_SELECTOR_LABELS = 16;

export const LabelKey = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/, "a label key is 1-128 letters, digits, '.', '_', '/' or '-', starting with a letter or digit");
export const LabelValue = z.string().regex(/^[A-Za-z0-9._-]{0,63}$/, "a label value is up to 63 letters, digits, '.', '_' or '-'");

/** A runner's labels, as it attaches with them: what pools select it by. */
export const RunnerLabels = z
  .record(LabelKey, LabelValue)
  .refine((labels) => Object.keys(labels).length <= MAX_RUNNER_LABELS, { message: `at most ${MAX_RUNNER_LABELS} labels` });

/** Labels a runner must carry (each key with that value) to be in a pool. */
export const LabelSelector = z.record(LabelKey, LabelValue).refine((labels) => {
  const n = Object.keys(labels).length;
  return n >= 1 && n <= MAX_SELECTOR_LABELS;
}, `a label selector names 1-${MAX_SELECTOR_LABELS} labels`);

export const PoolName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "a pool name is 1-64 lowercase letters, digits, '.', '_' or '-'")
  .describe("A pool the server's configuration defines (config.json `pools`)");

/** A pool instead of one runner: `{pool: "linux"}` (configured) or `{labels: {os: "linux"}}` (any runner carrying them). */
export const PoolRef = z.union([
  z.strictObject({ pool: PoolName }),
  z.strictObject({ labels: LabelSelector.describe("Any runner of the project whose labels include these") }),
]);

/** `runner` of proposal/create and run/resolve: one runner's name, or a pool. */
export const RunnerRef = z.union([z.string().min(1).max(200), PoolRef]);

/** One pool in the fleet view (`runner/pools`). */
export const PoolInfo = z.object({
  key: z.string().describe("The queue's name for it: `pool:NAME`, `labels:k=v,…`, `runner:NAME`"),
  name: z.string().describe("How people name it: the configured name, the selector `k=v,…`, or the runner's name"),
  configured: z.boolean().describe("Defined in the server's configuration (`pools`)"),
  labels: z.record(z.string(), z.string()).describe("The labels its runners carry (a named runner's queue: none)"),
  principals: z.array(z.string()).nullable().describe("Configured: the only principals whose runners are in it; null: any"),
  runners: z.array(z.string()).describe("The runners in it now, on every server"),
  capacity: z.number().int().nullable().describe("Commands its claiming runners take at once, together; null: one of them has no limit"),
  running: z.number().int().describe("Commands running on its runners"),
  queued: z.number().int().describe("Accepted commands waiting for one of its runners"),
  draining: z.number().int().describe("Its runners that take nothing new (spool runners drain)"),
  oldestQueuedAt: z.number().int().nullable().describe("When its longest-waiting command was accepted (ms since the epoch); null: none waits"),
});
export type PoolInfo = z.output<typeof PoolInfo>;

/** One accepted command waiting for a runner (`runner/queue`). */
export const QueuedCommand = z.object({
  run: z.string(),
  path: z.string().describe("Its log entry"),
  command: z.string(),
  pool: z.string().describe("The queue it waits in (`pool:NAME`, `labels:k=v,…`, `runner:NAME`)"),
  position: z.number().int().min(1).describe("1: the next one a free runner of its pool takes"),
  since: z.number().int().describe("When it was accepted (ms since the epoch)"),
});
export type QueuedCommand = z.output<typeof QueuedCommand>;
