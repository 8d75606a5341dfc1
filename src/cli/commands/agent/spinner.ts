import { inForeground } from "../../foreground.js";

/**
 * A spinner on stderr while the model thinks; only on a terminal, and only on an empty line: a line of the
 * model's text that has not ended yet is never drawn over nor erased (`atLineStart` says where the cursor is).
 */
export function spinner(enabled: boolean, atLineStart: () => boolean) {
  const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  let timer: NodeJS.Timeout | null = null;
  let drawn = false;
  let i = 0;
  return {
    start() {
      if (!enabled || timer) return;
      timer = setInterval(() => {
        // Not over the line of a shell (or of the job) in front of a background `spool act … &`.
        if (!drawn && (!atLineStart() || !inForeground())) return;
        drawn = true;
        process.stderr.write(`\r${frames[i++ % frames.length]} thinking…`);
      }, 80);
    },
    stop() {
      if (!timer) return;
      clearInterval(timer);
      timer = null;
      // Erase only what the spinner drew, on its own line.
      if (drawn) process.stderr.write("\r\u001b[K");
      drawn = false;
    },
  };
}
