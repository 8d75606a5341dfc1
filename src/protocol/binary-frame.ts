/**
 * The binary frame: one JSON-RPC request whose bytes field travels as raw bytes, in one WebSocket binary
 * message, so a runner's chunk is neither encoded to text nor put inside JSON and parsed back out.
 *
 *   offset 0        u8   layout version, 1 (a byte no JSON text starts with)
 *   offset 1        u32  header length H, big-endian (1 ≤ H ≤ BINARY_FRAME_MAX_HEADER)
 *   offset 5        H    header: UTF-8 JSON of the request ({"jsonrpc":"2.0","id":…,"method":…,"params":{…}})
 *                        with the bytes field left out of params
 *   offset 5 + H    …    the bytes field's value, raw, to the end of the message
 *
 * A server takes frames for the methods it names in `initialize`'s `binaryFrames.methods` (method → the
 * params field the bytes fill); the reply is ordinary JSON text. Plain JSON text requests stay accepted.
 * No Node built-ins here: Uint8Array, DataView and TextEncoder/TextDecoder only.
 */
export const BINARY_FRAME_VERSION = 1;

/** Bytes before the header: the version and the header's length. */
export const BINARY_FRAME_PREFIX = 5;

/** The longest header a frame may carry. */
export const BINARY_FRAME_MAX_HEADER = 16 * 1024;

/** What `initialize` answers about binary frames (its schema is in methods/session.ts: this module stays free of zod for the web page). */
export interface BinaryFrames {
  /** The frame layout's version (1). */
  version: number;
  /** Methods that take a binary frame, each with the params field its raw bytes fill. */
  methods: Record<string, string>;
}

/** A decoded frame: the request (the bytes field absent from its params) and the bytes. */
export interface DecodedFrame {
  ok: true;
  request: { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
  bytes: Uint8Array;
}

/** A frame that cannot be taken: why, and the request's id when the header could be read that far. */
export interface BadFrame {
  ok: false;
  reason: string;
  id: string | number | null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Whether a binary WebSocket message is a frame (else it is JSON text sent as binary, which stays accepted). */
export function isBinaryFrame(message: Uint8Array): boolean {
  return message.length > 0 && message[0] === BINARY_FRAME_VERSION;
}

/** Where a frame's header is encoded before the frame is allocated (frames are encoded one at a time: one for the module). */
const scratch = new Uint8Array(BINARY_FRAME_MAX_HEADER + 4);

/**
 * One message holding `request` (its params without the bytes field) and `bytes`: the one copy of the bytes.
 * `allocate` gives the frame's memory (every byte of it is written), e.g. a frame kept from an answered request.
 * The header is encoded into a buffer kept for it (no new array a frame), then copied into the frame before the bytes.
 */
export function encodeBinaryFrame(
  request: { jsonrpc: "2.0"; id: string | number; method: string; params: object },
  bytes: Uint8Array,
  allocate: (size: number) => Uint8Array = (size) => new Uint8Array(size),
): Uint8Array {
  const text = JSON.stringify(request);
  const { read, written } = encoder.encodeInto(text, scratch);
  if (read < text.length || written > BINARY_FRAME_MAX_HEADER) {
    throw new RangeError(`binary frame header of ${encoder.encode(text).length} bytes is over ${BINARY_FRAME_MAX_HEADER}`);
  }
  const frame = allocate(BINARY_FRAME_PREFIX + written + bytes.length);
  frame[0] = BINARY_FRAME_VERSION;
  // The header's length, big-endian.
  frame[1] = written >>> 24;
  frame[2] = (written >>> 16) & 0xff;
  frame[3] = (written >>> 8) & 0xff;
  frame[4] = written & 0xff;
  frame.set(scratch.subarray(0, written), BINARY_FRAME_PREFIX);
  frame.set(bytes, BINARY_FRAME_PREFIX + written);
  return frame;
}

const validId = (id: unknown): id is string | number => typeof id === "string" || (typeof id === "number" && Number.isFinite(id));

/** Reads a frame; the bytes are a view into `message` (not copied). */
export function decodeBinaryFrame(message: Uint8Array): DecodedFrame | BadFrame {
  const bad = (reason: string, id: string | number | null = null): BadFrame => ({ ok: false, reason, id });
  if (message.length < BINARY_FRAME_PREFIX) return bad(`binary frame of ${message.length} bytes is shorter than its ${BINARY_FRAME_PREFIX}-byte prefix`);
  if (message[0] !== BINARY_FRAME_VERSION) return bad(`binary frame layout ${message[0]} is not supported (this server reads ${BINARY_FRAME_VERSION})`);
  const length = new DataView(message.buffer, message.byteOffset, message.byteLength).getUint32(1);
  if (length === 0 || length > BINARY_FRAME_MAX_HEADER) return bad(`binary frame header length ${length} is outside 1-${BINARY_FRAME_MAX_HEADER}`);
  if (BINARY_FRAME_PREFIX + length > message.length) {
    return bad(`binary frame header length ${length} runs past the frame's ${message.length - BINARY_FRAME_PREFIX} bytes`);
  }
  let request: unknown;
  try {
    request = JSON.parse(decoder.decode(message.subarray(BINARY_FRAME_PREFIX, BINARY_FRAME_PREFIX + length)));
  } catch {
    return bad("binary frame header is not UTF-8 JSON");
  }
  if (typeof request !== "object" || request === null || Array.isArray(request)) return bad("binary frame header is not one JSON-RPC request object");
  const r = request as DecodedFrame["request"];
  const id = validId(r.id) ? r.id : null;
  if (id === null) return bad("binary frame header has no id: a frame is always a request");
  if (typeof r.params !== "object" || r.params === null || Array.isArray(r.params)) return bad("binary frame header's params are not an object", id);
  return { ok: true, request: r, bytes: message.subarray(BINARY_FRAME_PREFIX + length) };
}
