import { describe, expect, it } from "vitest";
import { anyString, decisionAndEnd, nonEmptyString } from "../../src/protocol/producer-attributes.js";
import { producerView } from "../../src/protocol/views.js";

const ended = { decision: "reject", reason: "", resolvedBy: "ann", outcome: "cancelled", status: 499, exit_code: 1.5, duration: 12.5, cancelledBy: "" };

describe("a producer's decision and end, read once for the server and the wire", () => {
  it("the server's reading keeps a string given as \"\"; the wire's shows it as none", () => {
    expect(decisionAndEnd(ended, anyString)).toMatchObject({ reason: "", cancelledBy: "", resolvedBy: "ann" });
    expect(decisionAndEnd(ended, nonEmptyString)).toMatchObject({ reason: null, cancelledBy: null, resolvedBy: "ann" });
  });

  it("reads the outcome, its status and the figures by type, whatever the string reader", () => {
    expect(decisionAndEnd(ended, anyString)).toMatchObject({ decision: "reject", outcome: "cancelled", endStatus: 499, exitCode: null, durationMs: 12.5 });
    expect(decisionAndEnd({ outcome: "exploded", status: 500, decision: "maybe" }, anyString)).toMatchObject({
      outcome: null,
      endStatus: null,
      decision: null,
    });
  });

  it("producerView (a bag without the server's typed producer) reads it as the wire does", () => {
    const p = producerView({ path: "log://turn_1/sh/x", status: 200, turn: 1, attributes: { tool: "sh", command: "x", ...ended } });
    expect(p).toMatchObject({ reason: null, cancelledBy: null, outcome: "cancelled", endStatus: 499, state: "cancelled" });
  });
});
