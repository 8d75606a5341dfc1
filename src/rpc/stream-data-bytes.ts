import { JsonStringBytes } from "./reply-bytes.js";

/** How a watcher takes chunks: UTF-8 text, or base64 of the bytes. */
export type ChunkEncoding = "utf8" | "base64";

/** Where a watch's chunks go: the fields of its `stream/data` notifications that stay the same from chunk to chunk. */
export interface StreamDataPlace {
  subscription: string;
  run: string;
  path: string;
  channel: number;
}

const CHUNK_FIELD = Buffer.from(',"chunk":');
const TAILS: Record<ChunkEncoding, Buffer> = { utf8: Buffer.from(',"encoding":"utf8"}}'), base64: Buffer.from(',"encoding":"base64"}}') };

/**
 * A watch's `stream/data` notifications as UTF-8 bytes, made by the RPC layer for the core: byte for byte what
 * `JSON.stringify` makes of the notification object (protocol/notifications.ts), without the object, the chunk's
 * string or the text in between. The part before `seq` is made once per watch; a chunk's JSON string is escaped from
 * its bytes once per encoding and shared by every watcher of that chunk (`chunkText`). test/core/watchers-fanout
 * holds it to the protocol's fields and to JSON.stringify; bench/history/README.md "watcher fan-out" has what it saves.
 */
export class StreamDataBytes {
  readonly #head: Buffer;

  constructor(place: StreamDataPlace) {
    const s = JSON.stringify;
    this.#head = Buffer.from(
      `{"jsonrpc":"2.0","method":"stream/data","params":{"subscription":${s(place.subscription)},"run":${s(place.run)},"path":${s(place.path)},"channel":${place.channel},"seq":`,
    );
  }

  /** The chunk's JSON string for `encoding`, from `texts` when another watcher of the chunk made it already. */
  static chunkText(data: Buffer, encoding: ChunkEncoding, texts?: Map<ChunkEncoding, JsonStringBytes>): JsonStringBytes {
    let chunk = texts?.get(encoding);
    if (chunk === undefined) {
      chunk = new JsonStringBytes(data, encoding);
      texts?.set(encoding, chunk);
    }
    return chunk;
  }

  /** The notification of chunk `seq`: the head, the seq, `,"chunk":`, the chunk's JSON string, the encoding. */
  message(seq: number, chunk: JsonStringBytes, encoding: ChunkEncoding): Buffer {
    const digits = String(seq);
    const tail = TAILS[encoding];
    const out = Buffer.allocUnsafe(this.#head.length + digits.length + CHUNK_FIELD.length + chunk.length + tail.length);
    let at = this.#head.copy(out, 0);
    at += out.write(digits, at, "latin1");
    at += CHUNK_FIELD.copy(out, at);
    at = chunk.writeTo(out, at);
    tail.copy(out, at);
    return out;
  }
}
