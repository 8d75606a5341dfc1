import { createHmac } from "node:crypto";
import { type NotifyBody, notifyTitle } from "../../protocol/notify-body.js";

/** One delivery as it leaves: the raw body and every header (the signature computed over exactly these bytes). */
export interface Rendered {
  body: string;
  headers: Record<string, string>;
}

/** Slack's mrkdwn reserves `&`, `<` and `>`: written as entities so a command cannot make a link or a mention (api.slack.com "Escaping text"). */
const slackEscape = (text: string) => text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

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
    const text = payload.url ? `${slackEscape(payload.text)}\n<${payload.url}|Open in Spool>` : slackEscape(payload.text);
    body = JSON.stringify({ text });
    headers["Content-Type"] = "application/json";
  } else {
    body = payload.text;
    headers["Content-Type"] = "text/plain; charset=utf-8";
    // Header values must be Latin-1: the title holds only project and run names (ASCII) and fixed words.
    headers.Title = notifyTitle(payload).replace(/[^\x20-\x7e]/g, "?");
    headers.Tags = `spool,${payload.event}`;
    if (payload.url) headers.Click = payload.url;
    if (payload.event === "proposal") headers.Priority = "high";
  }
  headers["User-Agent"] = "spool-notify";
  headers["X-Spool-Event"] = payload.event;
  headers["X-Spool-Delivery"] = payload.delivery;
  headers["X-Spool-Signature"] = signature(body, secret);
  return { body, headers };
}
