import { describe, expect, it } from "vitest";
import { render } from "../../src/core/activity/notify/render.js";
import { type NotifyBody, notifyText } from "../../src/protocol/notify-body.js";
import { factsOf } from "../../src/protocol/views.js";

/** Each event's notification as a person reads it: the title says what happened; no status numbers; one link. */
describe("notifications read at a glance", () => {
  const facts = factsOf({ tool: "sh", command: "make ```deploy```", cwd: "/srv/app" });
  const body = (over: Partial<NotifyBody>): NotifyBody => {
    const base: Omit<NotifyBody, "text"> = {
      event: "proposal",
      delivery: "d",
      at: 0,
      project: "app",
      run: "run-1",
      path: "log://turn_1/sh/make",
      facts,
      proposedBy: "model (demo)",
      decision: null,
      finished: null,
      budget: null,
      url: "http://127.0.0.1:7420/#/app/run-1/x",
      ...over,
    };
    return { ...base, text: notifyText(base, facts) };
  };
  const cases: [string, Partial<NotifyBody>, string, string | null][] = [
    ["proposal", {}, "Spool: a command waits for a decision in app/run-1", null],
    [
      "accepted",
      { event: "decided", decision: { outcome: "accept", by: "alice via spool-web", reason: null } },
      "Spool: accepted by alice via spool-web in app/run-1",
      "accepted by alice via spool-web",
    ],
    [
      "rejected",
      { event: "decided", decision: { outcome: "reject", by: "bob via spool-cli", reason: "not now" } },
      "Spool: rejected by bob via spool-cli in app/run-1",
      "rejected by bob via spool-cli: not now",
    ],
    [
      "expired",
      { event: "expired", decision: { outcome: "reject", by: "deadline", reason: "nobody decided" } },
      "Spool: rejected by the deadline in app/run-1",
      "rejected by deadline: nobody decided",
    ],
    [
      "done",
      { event: "finished", finished: { status: 200, outcome: "completed", exitCode: 0, reason: null } },
      "Spool: a command ended: done, exit 0 in app/run-1",
      "done, exit 0",
    ],
    [
      "failed",
      { event: "finished", finished: { status: 500, outcome: "completed", exitCode: 2, reason: null } },
      "Spool: a command ended: failed, exit 2 in app/run-1",
      "failed, exit 2",
    ],
    [
      "cancelled",
      { event: "finished", finished: { status: 499, outcome: "cancelled", exitCode: null, reason: "enough" } },
      "Spool: a command ended: cancelled in app/run-1",
      "cancelled: enough",
    ],
  ];
  for (const [name, over, title, line] of cases) {
    it(`${name}: the title says it; json, slack and ntfy each carry it once, without status numbers`, () => {
      const b = body(over);
      expect(b.text.split("\n")[0]).toBe(title);
      if (line) expect(b.text.split("\n")).toContain(line);
      expect(b.text).not.toMatch(/\((200|499|500)\b/);
      const slack = JSON.parse(render("slack", b, "s").body) as { text: string };
      expect(slack.text.startsWith(`*${title}*\n\`\`\`\n`)).toBe(true);
      expect(slack.text.split(b.url!).length - 1).toBe(1);
      // The command's backticks cannot end the code block early.
      expect(slack.text).toContain("make ` ` `deploy` ` `");
      const ntfy = render("ntfy", b, "s");
      expect(ntfy.headers.Title).toBe(title);
      expect(ntfy.body).not.toContain(title);
      expect(ntfy.body.split(b.url!).length - 1).toBe(1);
    });
  }
});
