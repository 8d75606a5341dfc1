import { z } from "zod";
import { RunnerInfo } from "../../runners/protocol.js";
import { defineMethod } from "../define.js";

export const runnerList = defineMethod({
  name: "runner/list",
  description:
    "The project's runners: attached ones, ones that went away while they had work (`disconnected`, their name held for them until `heldUntil`), and the embedded local runner when the server runs one.",
  params: z.strictObject({}),
  result: z.object({ runners: z.array(RunnerInfo) }),
  handler: async (_params, ctx) => {
    const { core, project } = ctx;
    const list: z.input<typeof RunnerInfo>[] = core.runners.list(project.id).map((r) => ({
      name: r.name,
      backend: r.backend,
      description: r.description,
      labels: r.labels,
      default: r.default,
      embedded: r.embedded,
      attachedAt: r.attachedAt,
      running: 0,
      sandbox: r.sandbox,
      state: "attached" as const,
      heldUntil: null,
    }));
    // Gone, with work: its name (and its producers) wait for it until the grace ends.
    for (const { runner: r, until } of core.runners.held(project.id)) {
      list.push({
        name: r.name,
        backend: r.backend,
        description: r.description,
        labels: r.labels,
        default: r.default,
        embedded: r.embedded,
        attachedAt: r.attachedAt,
        running: 0,
        sandbox: r.sandbox,
        state: "disconnected",
        heldUntil: until,
      });
    }
    const embedded = core.runners.embeddedName;
    const embeddedSandbox = core.runners.embeddedSandbox();
    if (embedded && embeddedSandbox && !list.some((r) => r.name === embedded)) {
      list.push({
        name: embedded,
        backend: "local",
        description: "embedded in the server; starts when first used",
        labels: {},
        default: false,
        embedded: true,
        attachedAt: 0,
        running: 0,
        sandbox: await embeddedSandbox,
        state: "attached",
        heldUntil: null,
      });
    }
    for (const r of list) r.running = await core.lifecycle.runningOn(project, r.name);
    return { runners: list.sort((a, b) => a.name.localeCompare(b.name)) };
  },
});
