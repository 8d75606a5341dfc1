import { z } from "zod";
import { notFound, SpoolError } from "../../rpc/errors.js";
import { defineMethod, ORDER_SEP } from "../../rpc/method.js";
import { appendChunk } from "../../store/chunks.js";
import { listChannels } from "../../store/entries.js";
import type { App } from "../plugin.js";
import { EntryPath, RunAlias, Status } from "../schemas.js";
import { finishStream, type Outcome } from "./finish.js";
import { requireProducer } from "./lookup.js";
import type { WatcherHub } from "./watchers.js";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const StreamParams = z.strictObject({
  run: RunAlias,
  path: EntryPath.describe("The producer's log entry path"),
  channel: z.number().int().min(1).describe("1 stdout, 2 stderr, higher for producer-specific streams"),
  chunk: z.string().describe("The bytes to append, encoded as `encoding` says"),
  seq: z.number().int().min(1).optional().describe("The channel's chunk number, from 1; a repeat is acknowledged without appending"),
  encoding: z.enum(["utf8", "base64"]).optional().describe("utf8 (default) or base64 for binary data"),
});

export const FinishResultSchema = z.object({
  path: z.string(),
  status: Status.describe("The channels' terminal status"),
  changed: z.boolean().describe("False when the producer had already finished: nothing was changed"),
  channels: z.array(z.object({ channel: z.number().int(), path: z.string(), status: Status, bytes: z.number().int(), lines: z.number().int() })),
});

export interface StreamTouch {
  touched(producerId: number): void;
}

export function streamMethod(app: App, hub: WatcherHub, touch: StreamTouch) {
  // Channel entry ids never change, so lookups are cached per (project, run, path, channel).
  const cache = new Map<string, { entryId: number; producerId: number }>();
  return defineMethod({
    name: "stream",
    description: "Appends a chunk to one data channel of an accepted producer. Costs the same whatever the channel already holds.",
    params: StreamParams,
    result: z.object({
      channel: z.number().int(),
      seq: z.number().int().describe("The seq this chunk was stored (or had been stored) under"),
      bytes: z.number().int().describe("Bytes the channel holds after the call"),
      duplicate: z.boolean().describe("True when this seq had already been appended; nothing was written"),
    }),
    // Per channel: two channels of one producer (or many producers of one runner) append side by side.
    ordered: (p) => `${p.run}\u0000${p.path}${ORDER_SEP}${p.channel}`,
    handler: async (params, ctx) => {
      if (params.encoding === "base64" && !BASE64.test(params.chunk)) {
        throw new SpoolError("INVALID_PARAMS", "chunk is not valid base64", { issues: [{ path: "chunk", message: "not valid base64" }] });
      }
      const data = Buffer.from(params.chunk, params.encoding ?? "utf8");
      const limit = app.config.limits.maxChunkBytes;
      if (data.length > limit) {
        throw new SpoolError("PAYLOAD_TOO_LARGE", `Chunk of ${data.length} bytes is over the limit of ${limit}; split it`, { limit, bytes: data.length });
      }
      const key = `${ctx.project.id}\u0000${params.run}\u0000${params.path}\u0000${params.channel}`;
      let target = cache.get(key);
      if (!target) {
        const { log } = await requireProducer(app, ctx.project, params.run, params.path);
        const channel = (await listChannels(app.store.db, log.id)).find((c) => c.channel === params.channel);
        if (!channel) throw notFound(`Channel ${params.channel} of "${params.path}"`, { run: params.run, path: params.path, channel: params.channel });
        target = { entryId: channel.id, producerId: log.id };
        cache.set(key, target);
      }
      const outcome = await appendChunk(app.store, target.entryId, data, params.seq);
      switch (outcome.kind) {
        case "closed":
          throw new SpoolError("STREAM_CLOSED", `Channel ${params.channel} of "${params.path}" has finished (status ${outcome.status})`, { status: outcome.status });
        case "gap":
          throw new SpoolError("SEQ_GAP", `seq ${params.seq} skips ahead; the next expected is ${outcome.expected}`, { expected: outcome.expected });
        case "duplicate":
          return { channel: params.channel, seq: outcome.seq, bytes: outcome.bytes, duplicate: true };
        case "appended":
          touch.touched(target.producerId);
          hub.publish(target.entryId, outcome.seq, data);
          return { channel: params.channel, seq: outcome.seq, bytes: outcome.bytes, duplicate: false };
      }
    },
  });
}

const FinishBase = { run: RunAlias, path: EntryPath.describe("The producer's log entry path") };
const Duration = z.number().int().min(0).optional().describe("Milliseconds the producer ran");

export function registerFinishMethods(app: App, hub: WatcherHub): void {
  const run = async (params: { run: string; path: string }, project: Parameters<typeof requireProducer>[1], outcome: Outcome) => {
    const { run, log } = await requireProducer(app, project, params.run, params.path);
    return finishStream(app, hub, project, run, log, outcome);
  };
  app.method(
    defineMethod({
      name: "stream/completed",
      description: "The producer finished: every channel becomes 200 (exit 0 or no exit code) or 500 (non-zero exit or a signal). Idempotent.",
      params: z.strictObject({
        ...FinishBase,
        exit_code: z.number().int().nullable().optional().describe("Exit code; null or absent when unknown"),
        signal: z.string().regex(/^SIG[A-Z0-9]+$/).nullable().optional().describe("Signal that ended the process, e.g. SIGKILL"),
        duration: Duration,
      }),
      result: FinishResultSchema,
      ordered: (p) => `${p.run}\u0000${p.path}`,
      handler: (p, ctx) => run(p, ctx.project, { kind: "completed", exit_code: p.exit_code, signal: p.signal, duration: p.duration }),
    }),
  );
  app.method(
    defineMethod({
      name: "stream/aborted",
      description: "The producer's side gave up (killed, timed out, failed to start): channels become 499 with the reason. Idempotent.",
      params: z.strictObject({ ...FinishBase, reason: z.string().max(4096).optional(), duration: Duration }),
      result: FinishResultSchema,
      ordered: (p) => `${p.run}\u0000${p.path}`,
      handler: (p, ctx) => run(p, ctx.project, { kind: "aborted", reason: p.reason ?? "aborted", duration: p.duration }),
    }),
  );
  app.method(
    defineMethod({
      name: "stream/cancel",
      description: "Any client asks to stop a producer: channels become 499 at once and `stream/cancelled` goes to every connection of the project, so the runner kills the work. Idempotent.",
      params: z.strictObject({ ...FinishBase, reason: z.string().max(4096).optional() }),
      result: FinishResultSchema,
      handler: async (p, ctx) => {
        const reason = p.reason ?? "cancelled";
        const result = await run(p, ctx.project, { kind: "cancelled", reason });
        if (result.changed) app.notifyProject(ctx.project.id, "stream/cancelled", { run: p.run, path: p.path, reason });
        return result;
      },
    }),
  );
}
