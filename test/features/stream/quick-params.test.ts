import { describe, expect, it } from "vitest";
import { stream } from "../../../src/features/stream/stream.js";
import { StreamParams, stream as streamRequest } from "../../../src/protocol/methods/stream.js";

// stream's quickParams skips zod's parse for a chunk's usual params: it must never accept what the schema refuses,
// and what it accepts must be what the schema would give.
const good = { run: "load", path: "log://turn_1/sh/ls_1", channel: 1, chunk: "hello\n", seq: 3 };
const cases: unknown[] = [
  good,
  { ...good, seq: undefined },
  { run: "r", path: "sh://x", channel: 2, chunk: "" },
  { ...good, encoding: "base64", chunk: "aGk=" },
  { ...good, encoding: "utf8" },
  { ...good, encoding: "hex" },
  { ...good, extra: 1 },
  { ...good, run: "" },
  { ...good, run: "-x" },
  { ...good, run: "a".repeat(65) },
  { ...good, run: "a".repeat(64) },
  { ...good, run: 5 },
  { ...good, path: "" },
  { ...good, path: "Log://x" },
  { ...good, path: "log:/x" },
  { ...good, path: "log://a\u0000b" },
  { ...good, path: `log://${"a".repeat(1020)}` },
  { ...good, path: `log://${"a".repeat(1018)}` },
  { ...good, channel: 0 },
  { ...good, channel: 1.5 },
  { ...good, channel: "1" },
  { ...good, channel: Number.MAX_SAFE_INTEGER + 1 },
  { ...good, channel: Number.POSITIVE_INFINITY },
  { ...good, channel: Number.NaN },
  { ...good, chunk: 7 },
  { ...good, seq: 0 },
  { ...good, seq: -1 },
  { ...good, seq: 2.5 },
  { ...good, seq: null },
  JSON.parse('{"run":"load","path":"log://x","channel":1,"chunk":"","__proto__":{"a":1}}'),
  Object.assign(Object.create({ inherited: 1 }), good),
  [good],
  null,
  "params",
  {},
];

describe("stream's quick params check", () => {
  it.each(cases.map((c, i) => [i, c]))("case %i agrees with StreamParams", (_i, params) => {
    const quick = stream.quickParams!(params);
    const parsed = StreamParams.safeParse(params);
    if (quick === undefined) return;
    expect(parsed.success).toBe(true);
    expect({ ...quick }).toEqual(parsed.data);
  });

  it("takes a chunk's usual params without the schema's copy", () => {
    expect(stream.quickParams!(good)).toBe(good);
    expect(stream.quickParams!({ ...good, channel: 0 })).toBeUndefined();
  });
});

// quickResult lets an ack go out without the result schema's parse: only when the parse would give the same JSON.
const ack = { channel: 1, seq: 2, bytes: 300, duplicate: false };
const results: unknown[] = [
  ack,
  { ...ack, duplicate: true },
  { seq: 2, channel: 1, bytes: 300, duplicate: false },
  { ...ack, extra: 1 },
  { channel: 1, seq: 2, bytes: 300 },
  { ...ack, seq: 1.5 },
  { ...ack, bytes: "300" },
  { ...ack, duplicate: 0 },
  Object.assign(Object.create({ inherited: 1 }), ack),
  null,
  [1, 2, 3, 4],
];

describe("stream's quick result check", () => {
  it.each(results.map((r, i) => [i, r]))("result %i: sent as the schema would give it", (_i, result) => {
    const parsed = streamRequest.result.safeParse(result);
    if (!stream.quickResult!(result)) return;
    expect(parsed.success).toBe(true);
    expect(JSON.stringify(result)).toBe(JSON.stringify(parsed.data));
  });

  it("takes the handler's acks as they are", () => {
    expect(stream.quickResult!(ack)).toBe(true);
    expect(stream.quickResult!({ ...ack, duplicate: true })).toBe(true);
  });
});
