import { SpoolRpcError } from "../../client/spool-client.js";
import { runStatusWord } from "../../protocol/status.js";
import { commandOf, defineCommand } from "../command-spec.js";
import { palette, withClient } from "../common.js";
import { CliError, EXIT } from "../errors.js";
import { REFS_HELP, RUN_HELP, resolveCommand, resolveRun } from "../refs.js";
import { endedWords } from "../words.js";

/** The commands that stop work: cancel a command, abort a run. */

const CANCEL_SPEC = defineCommand({
  name: "cancel",
  usage: "spool cancel [RUN [CMD]] [--reason TEXT]",
  about: `Cancels a running command; its runner kills the process. Exits 1 when the command had
already finished.

${REFS_HELP}`,
  connects: true,
  maxArgs: 2,
  options: { reason: { type: "string", arg: "TEXT", help: "why (kept in the channels' attributes)" } },
});

export const CANCEL = commandOf(CANCEL_SPEC, async (values, rest) => {
  return withClient(values, async (client) => {
    const run = await resolveRun(client, rest[0]);
    const { path } = await resolveCommand(client, run, rest[1]);
    const result = await client.call("stream/cancel", { run, path, ...(values.reason ? { reason: values.reason } : {}) });
    if (!result.changed) {
      // Nothing was cancelled: a failure, as \`spool input\` and \`spool abort\` on something finished are.
      const [log] = (await client.call("entry/list", { run, pattern: path })).entries;
      throw new CliError(`${path} had already finished: ${endedWords(log, result.status)}`, EXIT.failed);
    }
    process.stdout.write(`${palette().yellow("cancelled")} ${path}\n`);
    return EXIT.ok;
  });
});

/** `spool abort RUN`: stops a run — its model call, its pending proposals, its running commands. */
const ABORT_SPEC = defineCommand({
  name: "abort",
  usage: "spool abort [RUN] [--reason TEXT]",
  about: `Aborts a run: stops its model, rejects its pending proposals and cancels its running commands.

${RUN_HELP}`,
  connects: true,
  maxArgs: 1,
  options: { reason: { type: "string", arg: "TEXT", help: "why (kept with the run)" } },
});

export const ABORT = commandOf(ABORT_SPEC, async (values, rest) => {
  return withClient(values, async (client) => {
    const run = await resolveRun(client, rest[0]);
    const result = await client.call("run/abort", { run, reason: values.reason ?? "aborted from the spool CLI" }).catch(async (error: unknown) => {
      if (!(error instanceof SpoolRpcError) || error.errorCode !== "CONFLICT") throw error;
      const { run: now } = await client.call("run/get", { run });
      throw new CliError(`${run} is ${runStatusWord(now.status)}: nothing left to abort`, EXIT.failed);
    });
    const parts = [
      result.rejected.length ? `rejected ${result.rejected.length} proposal${result.rejected.length === 1 ? "" : "s"}` : "",
      result.cancelled.length ? `cancelled ${result.cancelled.length} command${result.cancelled.length === 1 ? "" : "s"}` : "",
    ].filter(Boolean);
    process.stdout.write(`${palette().yellow("aborted")} ${run}${parts.length ? `: ${parts.join(", ")}` : ""}\n`);
    return EXIT.ok;
  });
});
