import { z } from "zod";
import { EntryPath, RunAlias, Status } from "../../core/schemas.js";

/** The params every finishing call starts with, and the result they share. */
export const ProducerParams = { run: RunAlias, path: EntryPath.describe("The producer's log entry path") };

export const FinishResult = z.object({
  path: z.string(),
  status: Status.describe("The channels' terminal status"),
  changed: z.boolean().describe("False when the producer had already finished: nothing was changed"),
  channels: z.array(z.object({ channel: z.number().int(), path: z.string(), status: Status, bytes: z.number().int(), lines: z.number().int() })),
});

/** Finishing calls wait for the producer's appends that came before them on the same connection. */
export const producerOrder = (p: { run: string; path: string }) => `${p.run}\u0000${p.path}`;
