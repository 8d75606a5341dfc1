/** How a model server's failure is put into words: its `error` member, a message in unparsable text, a network cause. */

/** The message of an `error` member: a string, or {message, type, code}. */
export function errorText(error: unknown): string {
  if (typeof error === "string") return error;
  if (error && typeof error === "object") {
    const { message, type, code } = error as { message?: unknown; type?: unknown; code?: unknown };
    const details = [type, code].filter((v) => typeof v === "string" || typeof v === "number").join(", ");
    const text = typeof message === "string" && message ? message : JSON.stringify(error);
    return details ? `${text} (${details})` : text;
  }
  return String(error);
}

/** The message in an error event nothing could parse: the "message" or "error" string if there is one, else the text. */
export function errorFromText(text: string): string {
  const match = /"(?:message|error)"\s*:\s*"((?:[^"\\]|\\.)*)/.exec(text);
  if (match) {
    const value = parseLenient(`"${match[1]}"`);
    if (typeof value === "string" && value.trim()) return value;
  }
  return text.trim() || "an error event without a message";
}

export const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);

/** A network error's cause (fetch says only "fetch failed"). */
export function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: string; message?: string } | undefined;
  if (cause?.message) return cause.code && !cause.message.includes(cause.code) ? `${cause.code} ${cause.message}` : cause.message;
  return error.message;
}

/** The gist of an error body for a one-line message: its `error` or `message` member, else its first line. */
export function firstLine(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (parsed.error !== undefined && parsed.error !== null) return clip(errorText(parsed.error), 300);
    if (typeof parsed.message === "string") return clip(parsed.message, 300);
  } catch {
    // not JSON
  }
  return clip(text.split("\n")[0]!, 300);
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
