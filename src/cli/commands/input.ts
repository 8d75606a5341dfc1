import type { SpoolClient } from "../../client/spool-client.js";
import { commandOf, defineCommand } from "../command-spec.js";
import { connectClient, connectionLost } from "../common.js";
import { EXIT, usageError } from "../errors.js";
import { resolveCommand, resolveRun } from "../refs.js";

/** Bytes per stream/input call when sending what this command reads on stdin (well under the server's default maxInputBytes). */
export const INPUT_PART_BYTES = 16 * 1024;

const INPUT_SPEC = defineCommand({
  name: "input",
  usage: `spool input RUN CMD TEXT [-n] [--eof]
       spool input RUN CMD - [--eof]`,
  about: `Types into a running command: sends TEXT and a newline to its input (RUN and CMD as
spool tail takes them: CMD a number, part of the path, or the log path
log://turn_1/sh/…). Under a terminal the command reads it as keys. With - it sends
what this command reads on its own standard input, as it comes. What is sent is kept as
the command's channel 0 (stdin). Exits 1 when the command has finished.`,
  connects: true,
  options: {
    "no-newline": { type: "boolean", short: "n", help: "send TEXT as it is, without the newline" },
    eof: { type: "boolean", help: "then end the command's input (a pipe closes; a terminal gets ^D)" },
  },
});

export const INPUT = commandOf(INPUT_SPEC, async (values, positionals) => {
  if (positionals.length < 3) throw usageError("spool input needs RUN, CMD and TEXT (or - to send standard input; see `spool help input`)");
  if (positionals.length > 3) throw usageError(`spool input: unexpected argument "${positionals[3]}" (quote TEXT with spaces; see \`spool help input\`)`);
  const [runRef, commandRef, text] = positionals as [string, string, string];
  if (text === "-" && values["no-newline"]) throw usageError("-n only applies to TEXT, not to - (standard input is sent as it is)");
  const { client } = await connectClient(values);
  try {
    const run = await resolveRun(client, runRef);
    const { path } = await resolveCommand(client, run, commandRef);
    const eof = Boolean(values.eof);
    const bytes = await Promise.race([send(client, run, path, text, Boolean(values["no-newline"]), eof), connectionLost(client, "while sending")]);
    // Said, not silent: what went where (a command that already finished is an error instead).
    process.stdout.write(`sent ${bytes} byte${bytes === 1 ? "" : "s"} to ${path}${eof ? ", then the end of its input" : ""}\n`);
    return EXIT.ok;
  } finally {
    client.close();
  }
});

/** Sends TEXT (or standard input) and, with `eof`, the end of input; resolves with the bytes sent. */
async function send(client: SpoolClient, run: string, path: string, text: string, noNewline: boolean, eof: boolean): Promise<number> {
  let bytes = 0;
  if (text === "-") {
    for await (const chunk of process.stdin) {
      const data = chunk as Buffer;
      for (let at = 0; at < data.length; at += INPUT_PART_BYTES) await client.input(run, path, data.subarray(at, at + INPUT_PART_BYTES));
      bytes += data.length;
    }
  } else {
    const line = noNewline ? text : `${text}\n`;
    if (line !== "") await client.input(run, path, line);
    bytes = Buffer.byteLength(line);
  }
  if (eof) await client.eof(run, path);
  return bytes;
}
