import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/*
 * limits.proposalsPerMinute counts the proposals a principal makes: one refused for what it says (a cwd outside the
 * project, a runner there is not, an unknown tool) is bad input, which changes nothing, so it takes none of the
 * minute's count either. Over an in-process server with a minute of 3.
 */
describe("a principal's proposals a minute", () => {
  let ts: TestServer;
  let agent: SpoolClient;
  beforeAll(async () => {
    ts = await startTestServer({ limits: { proposalsPerMinute: 3 } });
    const admin = await ts.clientIn("rates");
    const { token } = await admin.call("token/create", { name: "hasty", role: "agent", projects: ["rates"] });
    agent = await SpoolClient.connect(ts.server.url, { token });
    await agent.initialize("rates");
    await agent.call("run/create", { alias: "r" });
  });
  afterAll(async () => {
    agent?.close();
    await ts?.stop();
  });

  const refusal = (call: Promise<unknown>) =>
    call.then(
      () => null,
      (error: { data?: { code?: string; limit?: string } }) => error.data,
    );

  it("takes no count for a proposal refused as bad input; the third stored is the minute's last", async () => {
    for (let i = 0; i < 5; i++) {
      expect(await refusal(agent.call("proposal/create", { run: "r", tool: "sh", command: "true", cwd: "/" }))).toMatchObject({
        code: "INVALID_PARAMS",
      });
      expect(await refusal(agent.call("proposal/create", { run: "r", tool: "sh", command: "true", runner: "nowhere" }))).toMatchObject({
        code: "NO_RUNNER",
      });
      expect(await refusal(agent.call("proposal/create", { run: "r", tool: "no-such-tool", command: "true" }))).toMatchObject({ code: "INVALID_PARAMS" });
    }
    for (let i = 0; i < 3; i++) await agent.call("proposal/create", { run: "r", tool: "sh", command: `echo ${i}` });
    expect(await refusal(agent.call("proposal/create", { run: "r", tool: "sh", command: "echo 3" }))).toMatchObject({
      code: "LIMIT_EXCEEDED",
      limit: "proposalsPerMinute",
    });
    // Past the count every proposal is refused for it first, a bad one too (its words are not read).
    expect(await refusal(agent.call("proposal/create", { run: "r", tool: "sh", command: "true", cwd: "/" }))).toMatchObject({
      code: "LIMIT_EXCEEDED",
    });
    const { entries } = await agent.call("entry/list", { run: "r" });
    expect(entries.filter((e) => e.status === 202)).toHaveLength(3);
  });
});
