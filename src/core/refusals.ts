import { conflict, notFound, SpoolError } from "../rpc/errors.js";
import type { EntryRow } from "../store/schema.js";
import { ENTRY, entryStatusWord } from "./status.js";

/** A bad parameter: what is wrong with it, under its name. */
export const invalid = (path: string, message: string) => new SpoolError("INVALID_PARAMS", `Invalid params: ${message}`, { issues: [{ path, message }] });

/** Only an accepted proposal has data channels to finish or write to. */
export function requireAccepted(log: EntryRow): void {
  if (log.status === ENTRY.done) return;
  throw notAccepted(log);
}

export const notAccepted = (log: EntryRow) =>
  conflict(
    `"${log.path}" has no data channels: it is ${log.status === ENTRY.proposed ? "still a pending proposal" : `${entryStatusWord(log.status)} (${log.status})`}`,
    {
      status: log.status,
    },
  );

export const notPending = (path: string, status: number) =>
  conflict(`"${path}" is not a pending proposal: it is ${entryStatusWord(status)} (${status})`, { status });

export const noChannel = (run: string, path: string, channel: number) => notFound(`Channel ${channel} of "${path}"`, { run, path, channel });

export const streamClosed = (channel: number, path: string, status: number) =>
  new SpoolError("STREAM_CLOSED", `Channel ${channel} of "${path}" has finished: ${entryStatusWord(status)}`, { status });

export const notOwner = (path: string, method: string) =>
  new SpoolError("NOT_OWNER", `Only the owner of "${path}" (its runner, or the connection that accepted it with runner "self") may call ${method}`, { path });
