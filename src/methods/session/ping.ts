import { z } from "zod";
import { defineMethod } from "../define.js";

export const ping = defineMethod({
  name: "ping",
  description: "Liveness check; works before `initialize`.",
  access: "none",
  params: z.strictObject({}),
  result: z.object({ pong: z.literal(true), time: z.number().int().describe("Server time, ms since the epoch") }),
  handler: () => ({ pong: true as const, time: Date.now() }),
});
