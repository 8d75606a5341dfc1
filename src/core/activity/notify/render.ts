import { createHmac } from "node:crypto";
import { type NotifyBody, notifyTitle } from "../../../protocol/notify-body.js";
import { escapeControl } from "../../../protocol/proposal-facts.js";

/** One delivery as it leaves: the raw body and every header (the signature computed over exactly these bytes). */
export interface Rendered {
  body: string;
  headers: Record<string, string>;
}

/** Slack's mrkdwn reserves `&`, `<` and `>`: written as entities so a command cannot make a link or a mention (api.slack.com "Escaping text"). */
const slackEscape = (text: string) => text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** A run of three backticks would end Slack's code block early: its backticks are set apart. */
const inCode = (line: string) => slackEscape(line).replace(/`{3,}/g, (run) => run.split("").join(" "));

/**
 * The text as Slack's mrkdwn: the title in bold, the facts (the indented lines, aligned for a fixed-width font) in
 * a code block, the decision or the end as a line, and the link once, as `<url|Open in Spool>`.
 */
function slackText(payload: NotifyBody): string {
  const lines = payload.text.split("\n");
  const [title, ...rest] = lines;
  if (payload.url && rest.at(-1) === escapeControl(payload.url)) rest.pop();
  const out = [`*${slackEscape(title ?? "")}*`];
  let block: string[] = [];
  const flush = () => {
    if (block.length) out.push(`\`\`\`\n${block.join("\n")}\n\`\`\``);
    block = [];
  };
  for (const line of rest) {
    if (line.startsWith("  ")) block.push(inCode(line.slice(2)));
    else {
      flush();
      out.push(slackEscape(line));
    }
  }
  flush();
  if (payload.url) out.push(`<${payload.url}|Open in Spool>`);
  return out.join("\n");
}

/** `sha256=<hex HMAC-SHA256 of the raw body under the secret>`, as GitHub's X-Hub-Signature-256. */
export function signature(body: string, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body, "utf8").digest("hex")}`;
}

/**
 * The body in a target's format: `json` is the NotifyBody itself; `slack` an incoming webhook's `{"text": …}`
 * (the text escaped for mrkdwn, the link as `<url|label>`); `ntfy` the text as the message with the Title, Click
 * and Tags headers ntfy reads (docs.ntfy.sh/publish). Every format carries the X-Spool headers and signature.
 */
export function render(format: "json" | "slack" | "ntfy", payload: NotifyBody, secret: string): Rendered {
  let body: string;
  const headers: Record<string, string> = {};
  if (format === "json") {
    body = JSON.stringify(payload);
    headers["Content-Type"] = "application/json";
  } else if (format === "slack") {
    body = JSON.stringify({ text: slackText(payload) });
    headers["Content-Type"] = "application/json";
  } else {
    // The title is the Title header: the message is what follows it (ntfy shows both).
    const title = notifyTitle(payload);
    body = payload.text.startsWith(`${title}\n`) ? payload.text.slice(title.length + 1) : payload.text;
    headers["Content-Type"] = "text/plain; charset=utf-8";
    // Header values must be Latin-1: anything else in a name becomes "?".
    headers.Title = title.replace(/[^\x20-\x7e]/g, "?");
    headers.Tags = `spool,${payload.event}`;
    if (payload.url) headers.Click = payload.url;
    // A person is asked: a proposal, or a run paused at its budget.
    if (payload.event === "proposal" || payload.event === "budget") headers.Priority = "high";
  }
  headers["User-Agent"] = "spool-notify";
  headers["X-Spool-Event"] = payload.event;
  headers["X-Spool-Delivery"] = payload.delivery;
  headers["X-Spool-Signature"] = signature(body, secret);
  return { body, headers };
}
