import { z } from "zod";
import { parseAttributes } from "../../store/entries.js";
import type { EntryRow } from "../../store/schema.js";
import { Attributes } from "../schemas.js";

export const ProposalNotice = z.object({
  run: z.string(),
  path: z.string(),
  tool: z.string(),
  command: z.string(),
  attributes: Attributes,
  turn: z.number().int(),
});

export function proposalNotice(runAlias: string, row: EntryRow): z.output<typeof ProposalNotice> {
  const attributes = parseAttributes(row);
  return {
    run: runAlias,
    path: row.path,
    tool: String(attributes.tool),
    command: String(attributes.command),
    attributes,
    turn: row.turn,
  };
}
