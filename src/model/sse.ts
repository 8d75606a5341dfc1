/** Server-sent events as the model servers stream them, and the lenient JSON their payloads need. */

/** One server-sent event, as the EventSource specification assembles it. */
export interface SseEvent {
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The same, plus lines without a field name that followed a data line (a server printing a multi-line message raw); used only when `data` is unreadable. */
  loose: string;
}

/**
 * An incremental SSE parser (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * lines end in CRLF, LF or CR; a blank line dispatches; `:` starts a comment;
 * one space after the colon is dropped; several data lines join with "\n".
 */
export class SseParser {
  #buffer = "";
  #data: string[] = [];
  #loose: string[] = [];
  #event = "";

  feed(text: string): SseEvent[] {
    this.#buffer += text;
    const events: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      if (!match) break;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (match[0] === "\r" && match.index === this.#buffer.length - 1) break;
      const line = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      const event = this.#line(line);
      if (event) events.push(event);
    }
    return events;
  }

  /** The stream ended: a last event without its blank line is still dispatched. */
  end(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.#buffer) {
      const event = this.#line(this.#buffer.replace(/\r$/, ""));
      if (event) events.push(event);
      this.#buffer = "";
    }
    const last = this.#line("");
    if (last) events.push(last);
    return events;
  }

  #line(line: string): SseEvent | undefined {
    if (line === "") {
      const event = this.#data.length ? { event: this.#event || "message", data: this.#data.join("\n"), loose: this.#loose.join("\n") } : undefined;
      this.#data = [];
      this.#loose = [];
      this.#event = "";
      return event;
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") {
      this.#data.push(value);
      this.#loose.push(value);
    } else if (field === "event") this.#event = value;
    else if (field !== "id" && field !== "retry" && this.#data.length) this.#loose.push(line);
    return undefined;
  }
}

/** JSON.parse, then again with raw control characters inside strings escaped (a multi-line message sent unescaped); undefined if neither reads. */
export function parseLenient(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // try the repaired form
  }
  let out = "";
  let inString = false;
  let escaped = false;
  for (const ch of text) {
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === "\\") escaped = true;
      else if (ch === '"') inString = false;
      else if (ch < " ") {
        out += ch === "\n" ? "\\n" : ch === "\r" ? "\\r" : ch === "\t" ? "\\t" : `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
        continue;
      }
    } else if (ch === '"') inString = true;
    out += ch;
  }
  try {
    return JSON.parse(out);
  } catch {
    return undefined;
  }
}
