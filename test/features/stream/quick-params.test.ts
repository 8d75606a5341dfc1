import { describe, expect, it } from "vitest";
import { stream } from "../../../src/features/stream/stream.js";
import { StreamParams } from "../../../src/protocol/methods/stream.js";

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
