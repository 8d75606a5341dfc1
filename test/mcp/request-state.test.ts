import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_SPENT_PER_PRINCIPAL, RequestStates, requestDigest, STATE_TTL_MS } from "../../src/mcp/stateless/request-state.js";

/*
 * The requestState of an elicited approval: the v2 SDK's codec (HMAC, expiry, principal binding) with Spool's
 * request digest and single-use nonce in its payload. modern.test.ts and stdio-modern.test.ts drive it end to end.
 */

const digest = requestDigest("tools/call", "run_command", { command: "ls" });
const proposal = { run: "r1", path: "p1", facts: 1, request: digest };

describe("request states", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("is the SDK's envelope; the principal is bound but not named in it", async () => {
    const states = new RequestStates();
    const token = await states.issue(proposal, "alice@example");
    expect(token).toMatch(/^v1\.[\w-]+\.[\w-]+$/);
    const body = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8"));
    expect(body.p).toMatchObject(proposal);
    expect(JSON.stringify(body)).not.toContain("alice");
    await expect(states.redeem(token, { principal: "bob", request: digest })).rejects.toThrow(/another principal/);
    expect(await states.redeem(token, { principal: "alice@example", request: digest })).toMatchObject(proposal);
  });

  it("is spent by its first redemption, even when two come at once", async () => {
    const states = new RequestStates();
    const token = await states.issue(proposal, "alice");
    const both = await Promise.allSettled([
      states.redeem(token, { principal: "alice", request: digest }),
      states.redeem(token, { principal: "alice", request: digest }),
    ]);
    expect(both.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect((both.find((r) => r.status === "rejected") as PromiseRejectedResult).reason.message).toMatch(/used already/);
  });

  it("refuses another request's, another server's, a malformed and an expired state", async () => {
    const states = new RequestStates();
    const token = await states.issue(proposal, "alice");
    const other = requestDigest("tools/call", "run_command", { command: "rm -rf /" });
    await expect(states.redeem(token, { principal: "alice", request: other })).rejects.toThrow(/another request/);
    await expect(new RequestStates().redeem(token, { principal: "alice", request: digest })).rejects.toThrow(/failed verification/);
    await expect(states.redeem("spool1.abc.def", { principal: "alice", request: digest })).rejects.toThrow(/not one this server issued/);
    await expect(states.redeem(`v1.${"A".repeat(9000)}.x`, { principal: "alice", request: digest })).rejects.toThrow(/not one this server issued/);

    // One this server signed that names no facts revision (none is minted so): refused, never taken as revision 1.
    const { facts: _, ...noFacts } = proposal;
    const unnamed = await states.issue(noFacts as typeof proposal, "alice");
    await expect(states.redeem(unnamed, { principal: "alice", request: digest })).rejects.toThrow(/not one this server issued/);

    vi.useFakeTimers({ toFake: ["Date"] });
    const old = await states.issue(proposal, "alice");
    vi.setSystemTime(Date.now() + STATE_TTL_MS + 2000);
    await expect(states.redeem(old, { principal: "alice", request: digest })).rejects.toThrow(/expired/);
  });

  it("past its bound of spent states a principal's next redemption is refused, never an old one forgotten (no replay); others are untouched", async () => {
    const states = new RequestStates();
    const first = await states.issue(proposal, "fast");
    await states.redeem(first, { principal: "fast", request: digest });
    for (let i = 1; i < MAX_SPENT_PER_PRINCIPAL; i++) await states.redeem(await states.issue(proposal, "fast"), { principal: "fast", request: digest });
    expect(states.remembered).toBe(MAX_SPENT_PER_PRINCIPAL);
    await expect(states.redeem(await states.issue(proposal, "fast"), { principal: "fast", request: digest })).rejects.toThrow(
      /refused until the oldest expires/,
    );
    // The first one is still remembered as spent: replaying it is refused as used, not run again.
    await expect(states.redeem(first, { principal: "fast", request: digest })).rejects.toThrow(/used already/);
    // Another principal's approvals go on.
    expect(await states.redeem(await states.issue(proposal, "other"), { principal: "other", request: digest })).toMatchObject(proposal);
    // Once the oldest have surely expired, the principal redeems again.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + STATE_TTL_MS + 2000);
    const fresh = await states.issue(proposal, "fast");
    expect(await states.redeem(fresh, { principal: "fast", request: digest })).toMatchObject(proposal);
    expect(states.remembered).toBe(1);
  });
});
