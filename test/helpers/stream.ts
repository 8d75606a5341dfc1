// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data and raw rows
import type { SpoolClient } from "../../src/client/spool-client.js";

/**
 * Collects `stream/data` and `stream/end` for one subscription. Notifications
 * can arrive in the same socket read as the subscribe reply, before the caller
 * knows the id, so everything is recorded and filtered when read.
 */
export function collect(client: SpoolClient, subscription: () => string | undefined, channels: number) {
  const data: { subscription: string; channel: number; seq: number; data: Buffer }[] = [];
  const allEnds: any[] = [];
  let check = () => {};
  const finished = new Promise<void>((resolve) => {
    check = () => {
      if (allEnds.filter((e) => e.subscription === subscription()).length === channels) resolve();
    };
  });
  client.on("stream/data", (p) => {
    data.push({ subscription: p.subscription, channel: p.channel, seq: p.seq, data: Buffer.from(p.chunk, p.encoding) });
  });
  client.on("stream/end", (p) => {
    allEnds.push(p);
    check();
  });
  const mine = () => data.filter((c) => c.subscription === subscription());
  return {
    get chunks() {
      return mine();
    },
    get ends() {
      return allEnds.filter((e) => e.subscription === subscription());
    },
    finished: finished.then(() => undefined),
    /** Call once the subscription id is known, in case every end already arrived. */
    recheck: () => check(),
    bytes: (channel: number) =>
      Buffer.concat(
        mine()
          .filter((c) => c.channel === channel)
          .map((c) => c.data),
      ),
  };
}

/** Streams `data` in `chunkSize` pieces with up to `window` calls in flight; returns the last seq. */
export async function streamBuffer(
  client: SpoolClient,
  target: { run: string; path: string; channel: number },
  data: Buffer,
  options: { chunkSize?: number; window?: number; encoding?: "utf8" | "base64" | "bytes" } = {},
): Promise<number> {
  const size = options.chunkSize ?? 64 * 1024;
  const encoding = options.encoding ?? "base64";
  // "bytes": each chunk raw in a binary frame, as a runner sends it where the server takes them.
  if (encoding === "bytes" && !client.bytes) throw new Error("streamBuffer: this connection takes no binary frames for stream");
  const inFlight = new Set<Promise<unknown>>();
  let seq = 0;
  for (let offset = 0; offset < data.length; offset += size) {
    seq++;
    const bytes = data.subarray(offset, offset + size);
    const sent =
      encoding === "bytes"
        ? client.request("stream", { ...target, chunk: bytes, seq })
        : client.call("stream", { ...target, chunk: bytes.toString(encoding), seq, encoding });
    const call: Promise<unknown> = sent.finally(() => inFlight.delete(call));
    inFlight.add(call);
    if (inFlight.size >= (options.window ?? 8)) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return seq;
}
