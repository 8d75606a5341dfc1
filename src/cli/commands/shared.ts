import type { SpoolClient } from "../../client/spool-client.js";
import { type ClientFlags, connectClient, connectionLost } from "../common.js";

/** For commands that take RUN alone. */
export const RUN_HELP = `RUN is a run's name, its number (3 for run-3) or the start of its name; omitted, the
project's latest run.`;

/** For commands that take RUN and CMD. */
export const REFS_HELP = `${RUN_HELP} CMD is a command of the run: its number (as spool show lists them),
part of its path (make, turn_2/sh/npm) or the whole log path; omitted, the latest one.`;

/** Runs a command body with a client joined to the project, closing it afterwards. */
export async function withClient<T>(flags: ClientFlags, body: (client: SpoolClient) => Promise<T>, options: { create?: boolean } = {}): Promise<T> {
  const { client } = await connectClient(flags, options);
  try {
    return await Promise.race([body(client), connectionLost(client, "while waiting for its answer")]);
  } finally {
    client.close();
  }
}
