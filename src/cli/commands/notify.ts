import type { z } from "zod";
import type { NotifyEvent } from "../../protocol/methods/notify.js";
import { escapeControl } from "../../protocol/proposal-facts.js";
import { NOTIFY_EVENTS, NOTIFY_FORMATS, receiverStateWords } from "../../protocol/receiver-state.js";
import { adminSubcommand, printList } from "../admin-subcommand.js";
import { type Command, defineCommand, JSON_OPTION } from "../command-spec.js";
import { age } from "../common.js";
import { EXIT, knownProjects, unknownName, usageError } from "../errors.js";

export const NOTIFY_SPEC = defineCommand({
  name: "notify",
  usage: `spool notify add NAME URL [--events LIST] [--format FORMAT] [--project NAME]... [--include-env-values]
       spool notify list [--json]
       spool notify remove NAME
       spool notify test NAME`,
  about: `Tells a receiver over HTTP when a proposal waits, is decided, finishes or
expires (admin only). Each event is POSTed from a durable outbox: retried with
backoff for a day, across restarts, sent once by one of the servers sharing the
database. add prints the signing secret as its only line on stdout, shown this
once: every delivery carries X-Spool-Signature: sha256=HMAC-SHA256(body, secret),
X-Spool-Event and X-Spool-Delivery (the same id on every retry). Formats: json
(the event with the proposal's facts and a link to it), slack (an incoming
webhook's {"text"}), ntfy (a topic URL: the text, with Title, Click and Tags).
test sends one signed test event now and says what the receiver answered.
Bodies name a command's env variables but leave their values out unless the
receiver was added with --include-env-values. URLs are shown redacted (a Slack
or ntfy URL is itself a credential).`,
  connects: true,
  options: {
    events: { type: "string", arg: "LIST", help: `events it gets, comma-separated: ${NOTIFY_EVENTS.join(",")}   [default: all]` },
    format: { type: "string", arg: "FORMAT", help: `${NOTIFY_FORMATS.join(", ")}   [default: json]` },
    project: { type: "string", multiple: true, arg: "NAME", help: "a project it is told of; repeat for more   [default: every project]" },
    "include-env-values": { type: "boolean", help: "send the values of a command's env variables too   [default: names only]" },
    ...JSON_OPTION,
  },
});

type Event = z.output<typeof NotifyEvent>;

function parseEvents(text: string): Event[] {
  const named = text.split(",").map((e) => e.trim());
  const unknown = named.find((e) => !(NOTIFY_EVENTS as readonly string[]).includes(e));
  if (unknown !== undefined) throw unknownName("event", unknown, NOTIFY_EVENTS, { flag: "--events", code: EXIT.usage });
  return [...new Set(named)] as Event[];
}

export async function notify(argv: string[]): Promise<number> {
  const started = adminSubcommand(NOTIFY_SPEC, argv);
  if (typeof started === "number") return started;
  const { sub, values, positionals, only, request } = started;
  switch (sub) {
    case "add": {
      only(["NAME", "URL"]);
      const format = values.format;
      if (format !== undefined && !(NOTIFY_FORMATS as readonly string[]).includes(format))
        throw unknownName("format", format, NOTIFY_FORMATS, { flag: "--format", code: EXIT.usage });
      const events = values.events !== undefined ? parseEvents(values.events) : undefined;
      const added = await request(async (c) => {
        // A receiver for a project the server has none of would never be told anything.
        await knownProjects(c, values.project ?? []);
        return c.call("notify/add", {
          name: positionals[0]!,
          url: positionals[1]!,
          ...(events !== undefined ? { events } : {}),
          ...(format !== undefined ? { format: format as (typeof NOTIFY_FORMATS)[number] } : {}),
          ...(values.project ? { projects: values.project } : {}),
          ...(values["include-env-values"] ? { includeEnvValues: true } : {}),
        });
      });
      process.stdout.write(`${added.secret}\n`);
      const t = added.target;
      const scope = t.projects ? `projects ${t.projects.join(", ")}` : "every project";
      process.stderr.write(
        `added ${t.name}: ${t.events.join(", ")} of ${scope} to ${escapeControl(t.url)} as ${t.format}; the secret above signs every delivery and is not shown again\n`,
      );
      return EXIT.ok;
    }
    case "list": {
      only([]);
      const { targets } = await request((c) => c.call("notify/list", {}));
      return printList(
        targets,
        values.json,
        "no receivers — spool notify add NAME URL adds one",
        ["name", "url", "format", "events", "projects", "state", "added"],
        (t) => ({
          name: t.name,
          url: t.url,
          format: t.format,
          events: t.events.join(","),
          projects: t.projects ? t.projects.join(",") : "*",
          state: receiverStateWords(t).words,
          added: `${age(t.createdAt)} by ${t.createdBy}`,
        }),
      );
    }
    case "remove": {
      only(["NAME"]);
      const { target } = await request((c) => c.call("notify/remove", { name: positionals[0]! }));
      process.stdout.write(
        `removed ${target.name}${target.pending ? ` (${target.pending} undelivered notification${target.pending === 1 ? "" : "s"} dropped)` : ""}\n`,
      );
      return EXIT.ok;
    }
    case "test": {
      only(["NAME"]);
      const sent = await request((c) => c.call("notify/test", { name: positionals[0]! }));
      if (sent.ok) {
        process.stdout.write(`${positionals[0]} answered ${sent.status} to delivery ${sent.delivery}\n`);
        return EXIT.ok;
      }
      process.stderr.write(`spool notify test: ${positionals[0]} did not take delivery ${sent.delivery}: ${escapeControl(sent.error ?? "failed")}\n`);
      return EXIT.failed;
    }
    default:
      throw usageError(`spool notify: unknown subcommand "${sub}" (add, list, remove or test)`);
  }
}

export const NOTIFY: Command = { spec: NOTIFY_SPEC, run: notify };
