import { z } from "zod";

/** Schemas shared by several methods; each method file builds its params from these. */
export const RunAlias = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "a run alias is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
  .describe("Run alias, unique within the project");

export const EntryPath = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[a-z][a-z0-9+.-]*:\/\/[^\0]*$/, "an entry path looks like scheme://rest")
  .describe("Entry path, e.g. log://turn_1/sh/ls or sh://turn_1/ls_1");

export const Status = z.number().int().min(100).max(599).describe("HTTP-like status code");

export const Attributes = z.record(z.string(), z.unknown()).describe("Free-form JSON attributes");

export const Run = z.object({
  alias: z.string(),
  model: z.string().nullable(),
  mode: z.enum(["ask", "act"]),
  status: Status,
  turn: z.number().int(),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
});

export const EntrySummary = z.object({
  path: z.string(),
  status: Status,
  turn: z.number().int(),
  attributes: Attributes,
  bytes: z.number().int(),
  lines: z.number().int(),
  streamed: z.boolean(),
});

export type RunOut = z.output<typeof Run>;
export type EntrySummaryOut = z.output<typeof EntrySummary>;
