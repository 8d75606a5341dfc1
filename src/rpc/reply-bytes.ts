import { isUtf8 } from "node:buffer";

/**
 * Replies built as bytes: a large string field of a result (an `entry/get`
 * body) written into the reply's Buffer straight from the Buffer it was read
 * into, escaped as JSON.stringify escapes it, instead of being decoded into a
 * string, stringified into the reply's text and encoded again by the socket.
 * The bytes are exactly the UTF-8 of what JSON.stringify makes of the reply.
 */

/** Bytes each byte adds when escaped in a JSON string: `\n` and the like 1, other control characters 5 (`\u00XX`). */
const EXTRA = new Uint8Array(256);
/** The letter after the backslash of a short escape (`\"`, `\\`, `\b`, `\t`, `\n`, `\f`, `\r`); 0 for `\u00XX`. */
const SHORT = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) EXTRA[c] = 5;
for (const [c, letter] of [
  [0x08, "b"],
  [0x09, "t"],
  [0x0a, "n"],
  [0x0c, "f"],
  [0x0d, "r"],
  [0x22, '"'],
  [0x5c, "\\"],
] as const) {
  EXTRA[c] = 1;
  SHORT[c] = letter.charCodeAt(0);
}
const HEX = Buffer.from("0123456789abcdef", "latin1");
const QUOTE = 0x22;
/** Bytes encoded to base64 per step (a multiple of 3, so the pieces join without padding between them). */
const BASE64_STEP = 3 * 16 * 1024;

/**
 * The JSON string of `data.toString(encoding)`, quotes included, as UTF-8
 * bytes: what `Buffer.from(JSON.stringify(data.toString(encoding)))` gives,
 * without the string or the text in between. Text that is not valid UTF-8
 * is decoded as `toString` decodes it (each bad sequence U+FFFD), through a
 * string: that case only costs what it always did.
 */
export class JsonStringBytes {
  readonly length: number;
  readonly #data: readonly Buffer[];
  readonly #encoding: "utf8" | "base64";
  /** Set when the text is not valid UTF-8: its JSON made the old way. */
  readonly #fallback: Buffer | null = null;

  /**
   * @param data the bytes, or the bytes in pieces (views of the rows they were read from): text valid in
   * every piece is escaped piece by piece, anything else (base64, a character cut between pieces) is joined first.
   */
  constructor(data: Buffer | readonly Buffer[], encoding: "utf8" | "base64") {
    this.#encoding = encoding;
    let pieces = Buffer.isBuffer(data) ? [data] : data;
    if (pieces.length > 1 && (encoding === "base64" || !pieces.every((piece) => isUtf8(piece)))) pieces = [Buffer.concat(pieces)];
    this.#data = pieces;
    const bytes = pieces.reduce((sum, piece) => sum + piece.length, 0);
    if (encoding === "base64") this.length = 4 * Math.ceil(bytes / 3) + 2;
    else if (pieces.length > 1 || isUtf8(pieces[0]!)) this.length = bytes + pieces.reduce((sum, piece) => sum + escapedExtra(piece), 0) + 2;
    else {
      this.#fallback = Buffer.from(JSON.stringify(pieces[0]!.toString("utf8")), "utf8");
      this.length = this.#fallback.length;
    }
  }

  /** Writes the `length` bytes at `offset` of `target`; returns the offset after them. */
  writeTo(target: Buffer, offset: number): number {
    if (this.#fallback) return offset + this.#fallback.copy(target, offset);
    let pos = offset;
    target[pos++] = QUOTE;
    if (this.#encoding === "base64") {
      // One piece (joined in the constructor).
      const data = this.#data[0]!;
      for (let start = 0; start < data.length; start += BASE64_STEP) {
        pos += target.write(data.toString("base64", start, Math.min(data.length, start + BASE64_STEP)), pos, "latin1");
      }
    } else for (const piece of this.#data) pos = writeEscaped(piece, target, pos);
    target[pos++] = QUOTE;
    return pos;
  }
}

function escapedExtra(data: Buffer): number {
  let extra = 0;
  for (let i = 0; i < data.length; i++) extra += EXTRA[data[i]!]!;
  return extra;
}

function writeEscaped(data: Buffer, target: Buffer, offset: number): number {
  let pos = offset;
  for (let i = 0; i < data.length; i++) {
    const byte = data[i]!;
    if (EXTRA[byte] === 0) {
      target[pos++] = byte;
      continue;
    }
    target[pos++] = 0x5c;
    const letter = SHORT[byte]!;
    if (letter !== 0) target[pos++] = letter;
    else {
      // \u00XX, lower-case hex as JSON.stringify writes it.
      target[pos++] = 0x75;
      target[pos++] = 0x30;
      target[pos++] = 0x30;
      target[pos++] = HEX[byte >> 4]!;
      target[pos++] = HEX[byte & 15]!;
    }
  }
  return pos;
}

/**
 * What a handler may ask of the reply its call gets (MethodContext.reply):
 * that one string field of its result go out as bytes it already holds, and
 * work to do once the message carrying the reply has been handed to the
 * connection (or dropped), e.g. giving read-cap bytes back once it is flushed.
 */
export class ReplyParts {
  /** The reply goes out inside a batch's, once the batch's other calls have run. */
  constructor(readonly batched = false) {}

  #field: { name: string; value: JsonStringBytes } | null = null;
  /** Made at the first hook (most calls have none). */
  #sent: (() => void)[] | null = null;

  /** `result[name]` (the handler puts "" there) goes out as `value`'s JSON string. */
  setField(name: string, value: JsonStringBytes): void {
    this.#field = { name, value };
  }

  get field(): { name: string; value: JsonStringBytes } | null {
    return this.#field;
  }

  /** Runs `hook` once the reply has been handed to the connection, or will not be sent. */
  onSent(hook: () => void): void {
    (this.#sent ??= []).push(hook);
  }

  /** @internal The hooks, for the message that carries this reply. */
  takeHooks(): (() => void)[] {
    return this.#sent ? this.#sent.splice(0) : [];
  }
}

/** A reply built as bytes (JSON text, UTF-8), with what to run once it has been handed to the connection. */
export class OutgoingReply {
  constructor(
    readonly data: Buffer | string,
    readonly sent: (() => void)[],
  ) {}

  get size(): number {
    return typeof this.data === "string" ? this.data.length : this.data.length;
  }

  /** Runs the hooks once. */
  done(): void {
    for (const hook of this.sent.splice(0)) {
      try {
        hook();
      } catch {
        // One hook failing must not keep the others from running.
      }
    }
  }
}

/**
 * `JSON.stringify(response)` as bytes, where `response.result[field.name]`
 * goes out as `field.value` (whatever the result holds there). Keys in the
 * objects' own order, undefined values left out: JSON.stringify's rules for
 * the two plain objects it walks here.
 */
export function serializeWithField(response: Record<string, unknown>, field: { name: string; value: JsonStringBytes }): Buffer {
  const result = response.result as Record<string, unknown>;
  const before: string[] = [];
  const after: string[] = [];
  let seen = false;
  let inResult = false;
  const member = (key: string, value: unknown): string | null => {
    if (value === undefined || typeof value === "function" || typeof value === "symbol") return null;
    return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
  };
  // The envelope's members up to "result", then the result's members around the field.
  const head: string[] = [];
  const tail: string[] = [];
  for (const key of Object.keys(response)) {
    if (key === "result") {
      inResult = true;
      continue;
    }
    const text = member(key, response[key]);
    if (text !== null) (inResult ? tail : head).push(text);
  }
  for (const key of Object.keys(result)) {
    if (key === field.name) {
      seen = true;
      continue;
    }
    const text = member(key, result[key]);
    if (text !== null) (seen ? after : before).push(text);
  }
  const open = `{${head.map((t) => `${t},`).join("")}"result":{${before.map((t) => `${t},`).join("")}${JSON.stringify(field.name)}:`;
  const close = `${after.map((t) => `,${t}`).join("")}}${tail.map((t) => `,${t}`).join("")}}`;
  const openBytes = Buffer.byteLength(open);
  const out = Buffer.allocUnsafe(openBytes + field.value.length + Buffer.byteLength(close));
  out.write(open, 0, "utf8");
  const pos = field.value.writeTo(out, openBytes);
  out.write(close, pos, "utf8");
  return out;
}
