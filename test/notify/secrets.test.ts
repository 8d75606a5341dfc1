import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { type Receiver, startReceiver } from "../helpers/receiver.js";
import { tempDir } from "../helpers/server.js";

// Secrets stay home, over a real `spool serve` and real HTTP receivers: a command's env values reach a receiver only
// when it opted in, and a receiver's URL (for Slack and ntfy, the credential itself) is shown and audited redacted.

describe("notifications keep secrets home", () => {
  let serve: ServeProcess;
  let admin: SpoolClient;
  const hooks: Receiver[] = [];

  beforeAll(async () => {
    const home = tempDir();
    const root = tempDir("spool-root-");
    mkdirSync(join(root, "p"));
    serve = await spawnServe(["--port", String(await freePort()), "--home", home, "--no-local-runner"]);
    admin = await SpoolClient.connect(serve.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
    await admin.initialize("p", { root: join(root, "p") });
    for (let i = 0; i < 4; i++) hooks.push(await startReceiver());
  }, 90_000);
  afterAll(async () => {
    admin?.close();
    for (const h of hooks) await h.close();
    await serve?.stop();
  });

  it("env names but no values without --include-env-values (json, slack, ntfy), the text saying they were left out; values with it", async () => {
    const [json, slack, ntfy, optedIn] = hooks as [Receiver, Receiver, Receiver, Receiver];
    await admin.call("notify/add", { name: "json", url: json.url, events: ["proposal"] });
    await admin.call("notify/add", { name: "slack", url: slack.url, events: ["proposal"], format: "slack" });
    await admin.call("notify/add", { name: "ntfy", url: ntfy.url, events: ["proposal"], format: "ntfy" });
    const added = await admin.call("notify/add", { name: "opted-in", url: optedIn.url, events: ["proposal"], includeEnvValues: true });
    expect(added.target.includeEnvValues).toBe(true);
    await admin.call("run/create", { alias: "r" });
    await admin.call("proposal/create", { run: "r", tool: "sh", command: "aws s3 ls", env: { AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI-secret-value" } });
    for (const hook of [json, slack, ntfy]) {
      const [got] = await hook.waitFor(1);
      expect(got!.body).toContain("AWS_SECRET_ACCESS_KEY");
      expect(got!.body).not.toContain("wJalrXUtnFEMI");
      expect(got!.body).toContain("env values left out");
    }
    expect(JSON.parse((await json.waitFor(1))[0]!.body).facts.env).toEqual([["AWS_SECRET_ACCESS_KEY", "(left out)"]]);
    const [opted] = await optedIn.waitFor(1);
    expect(JSON.parse(opted!.body).facts.env).toEqual([["AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret-value"]]);
    expect(opted!.body).not.toContain("left out");
  });

  it("a receiver's URL is shown and audited redacted: scheme, host and the path's last four characters", async () => {
    const slackUrl = "https://127.0.0.1:1/services/T000/B000/XXXXsecretTOKENabcd";
    await admin.call("notify/add", { name: "slack-url", url: slackUrl, format: "slack", events: ["expired"] });
    const listed = (await admin.call("notify/list", {})).targets.find((t) => t.name === "slack-url")!;
    expect(listed.url).toBe("https://127.0.0.1:1/…abcd");
    await admin.call("notify/remove", { name: "slack-url" });
    const { events } = await admin.call("audit/list", {});
    const acts = events.filter((e) => (e.action === "notify/add" || e.action === "notify/remove") && e.detail.name === "slack-url");
    expect(acts).toHaveLength(2);
    for (const act of acts) expect((act.detail as { url: string }).url).toBe("https://127.0.0.1:1/…abcd");
    expect(JSON.stringify(events)).not.toContain("secretTOKEN");
  });
});
