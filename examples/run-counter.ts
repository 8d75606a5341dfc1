import { defineMethod, definePlugin } from "spool/plugin";
import { z } from "zod";

export default definePlugin({
  name: "run-counter",
  dependencies: ["runs"],
  setup(app) {
    const counts = new Map<number, number>();
    app.on("run:created", ({ project }) => {
      counts.set(project.id, (counts.get(project.id) ?? 0) + 1);
    });
    app.method(
      defineMethod({
        name: "runCounter/get",
        description: "Runs created in the caller's project since the server started.",
        role: "viewer",
        params: z.strictObject({}),
        result: z.object({ created: z.number().int() }),
        handler: (_params, ctx) => ({ created: counts.get(ctx.project.id) ?? 0 }),
      }),
    );
  },
});
