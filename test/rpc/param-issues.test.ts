import { describe, expect, it } from "vitest";
import { methods } from "../../src/protocol/methods/index.js";
import { describeIssues } from "../../src/rpc/call-input.js";

/** The INVALID_PARAMS issues a method's schema gives for `params`. */
function issuesOf(method: keyof typeof methods, params: unknown) {
  const parsed = methods[method].params.safeParse(params);
  expect(parsed.success).toBe(false);
  return describeIssues(parsed.error!);
}

describe("INVALID_PARAMS issues name what is wrong, also inside a choice of shapes", () => {
  const proposal = { run: "r", tool: "sh", command: "true" };

  it("a bad label key in a pool selector says why the key is refused, at its path", () => {
    const issues = issuesOf("proposal/create", { ...proposal, runner: { labels: { "bad key!": "x" } } });
    expect(issues).toEqual([{ path: "runner.labels.bad key!", message: expect.stringMatching(/^a label key is 1-128 letters.*\(the key "bad key!"\)$/) }]);
  });

  it("a bad label value and a bad pool name each say their rule", () => {
    expect(issuesOf("proposal/create", { ...proposal, runner: { labels: { os: "a b" } } })).toEqual([
      { path: "runner.labels.os", message: expect.stringMatching(/^a label value is up to 63/) },
    ]);
    expect(issuesOf("proposal/create", { ...proposal, runner: { pool: "Not A Pool" } })).toEqual([
      { path: "runner.pool", message: expect.stringMatching(/^a pool name is 1-64 lowercase/) },
    ]);
  });

  it("when no shape comes closer than another, the choice's own message stays", () => {
    const issues = issuesOf("proposal/create", { ...proposal, runner: 5 });
    expect(issues).toEqual([{ path: "runner", message: "Invalid input" }]);
  });

  it("unknown fields are still named", () => {
    expect(issuesOf("proposal/create", { ...proposal, colour: "red" })).toContainEqual({ path: "(params)", message: "unknown field(s): colour" });
  });
});
