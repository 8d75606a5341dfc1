import { escapeControl } from "../protocol/proposal-facts.js";

/** What marks a line typed to a command (its channel 0) in a transcript. */
export const TYPED_LABEL = "[typed] ";

/**
 * A command's output with what was typed to it, in the order it happened (its chunks in stored order): the
 * output as it was printed, each line typed on a line of its own after TYPED_LABEL, its control characters
 * shown escaped (Enter ends a typed line, as `\n` does).
 */
export function transcript(chunks: readonly { input: boolean; data: Buffer }[]): string {
  let out = "";
  let typed = "";
  const flushTyped = () => {
    if (typed === "") return;
    const lines = typed.split(/\r\n|\r|\n/);
    if (lines[lines.length - 1] === "") lines.pop();
    if (out !== "" && !out.endsWith("\n")) out += "\n";
    for (const line of lines) out += `${TYPED_LABEL}${escapeControl(line)}\n`;
    typed = "";
  };
  for (const chunk of chunks) {
    if (chunk.input) {
      typed += chunk.data.toString("utf8");
      continue;
    }
    flushTyped();
    out += chunk.data.toString("utf8");
  }
  flushTyped();
  return out;
}
