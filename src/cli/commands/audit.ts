import { escapeControl } from "../../protocol/proposal-facts.js";
import { claimWords } from "../../protocol/roles.js";
import { type Command, defineCommand, JSON_OPTION, optionsOf, parseCommand, showHelp } from "../command-spec.js";
import { connectionLost, connectServer } from "../common.js";
import { EXIT, knownProjects, usageError } from "../errors.js";
import { parseDuration } from "./token.js";

export const AUDIT_SPEC = defineCommand({
  name: "audit",
  usage: "spool audit [--since DURATION] [--project NAME] [--json]",
  about: `Prints the audit trail (admin only), oldest first: every proposal, decision,
expiry, cancel, abort, input sent (its size, never its bytes), sign-in, token and
notify change, project created, runner attached, with who made it (the
principal, the transport the server verified, and the client's name it
claims), when, and in which project and run. The server appends to it and never changes or deletes a line.
--json prints one JSON object per line.`,
  connects: true,
  options: {
    since: { type: "string", arg: "DURATION", help: "only the last 30m, 12h, 7d, 4w   [default: everything]" },
    project: { type: "string", arg: "NAME", help: "only this project's acts" },
    ...JSON_OPTION,
  },
});

const PAGE = 1000;

export async function audit(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("audit", argv, optionsOf(AUDIT_SPEC));
  if (values.help) return showHelp(AUDIT_SPEC);
  if (positionals.length > 0) throw usageError("spool audit takes no argument (see `spool help audit`)");
  let since: number | undefined;
  try {
    since = values.since === undefined ? undefined : Date.now() - parseDuration(values.since);
  } catch {
    throw usageError(`--since takes a duration like 30m, 12h, 7d or 4w, not "${values.since}"`);
  }
  const client = await connectServer({ server: values.server, "token-file": values["token-file"] });
  try {
    // A mistyped project would print nothing, as a quiet one does: it is an error instead.
    await Promise.race([knownProjects(client, values.project === undefined ? [] : [values.project]), connectionLost(client, "while waiting for its answer")]);
    let after: number | undefined;
    for (;;) {
      const { events } = await Promise.race([
        client.call("audit/list", {
          ...(since !== undefined ? { since } : {}),
          ...(values.project !== undefined ? { project: values.project } : {}),
          ...(after !== undefined ? { after } : {}),
          limit: PAGE,
        }),
        connectionLost(client, "while waiting for its answer"),
      ]);
      let out = "";
      for (const e of events) {
        if (values.json) out += `${JSON.stringify(e)}\n`;
        else {
          // The transport is what the server verified; the client's name is only what the caller claimed.
          const who = claimWords(e.principal, e.transport, e.client);
          const where = [e.project, e.run, e.path].filter((p) => p !== null).join(" ");
          const detail = Object.entries(e.detail)
            .filter(([, v]) => v !== null && v !== undefined)
            .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
            .join(" ");
          out += `${escapeControl(`${new Date(e.at).toISOString()}  ${e.action.padEnd(13)} ${who}${where ? `  ${where}` : ""}${detail ? `  ${detail}` : ""}`)}\n`;
        }
      }
      if (out) process.stdout.write(out);
      if (events.length < PAGE) break;
      after = events.at(-1)!.id;
    }
    return EXIT.ok;
  } finally {
    client.close();
  }
}

export const AUDIT: Command = { spec: AUDIT_SPEC, run: audit };
