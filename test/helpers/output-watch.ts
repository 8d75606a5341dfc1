/**
 * What a `spool` command wrote to stdout and stderr, kept as text, and waiters for a pattern in either: read the same
 * way whether the command is a subprocess (helpers/process.ts) or runs in this process (helpers/cli-in-process.ts).
 */
export interface OutputWatch {
  text: { stdout: string; stderr: string; output: string };
  /** Adds what the command wrote to `stream`; settles the waiters it satisfies. */
  add(stream: "stdout" | "stderr", piece: string): void;
  /** The command's output is over: every waiter still waiting fails. */
  end(): void;
  /** stdout and stderr, for an error message. */
  told(): string;
  /** Resolves with the first match of `pattern` in `stream`; rejects when the output ends first, or after `timeoutMs`. */
  waitFor(pattern: RegExp, stream?: "stdout" | "stderr", timeoutMs?: number): Promise<RegExpExecArray>;
}

/** An OutputWatch for the command `label`; `ended` says how it ended, for a waiter the end failed. */
export function outputWatch(label: string, ended: () => string): OutputWatch {
  const text = { stdout: "", stderr: "", output: "" };
  let over = false;
  const watchers: { pattern: RegExp; stream: "stdout" | "stderr"; settle: (match: RegExpExecArray | null) => void }[] = [];
  const check = () => {
    for (const w of [...watchers]) {
      const match = w.pattern.exec(text[w.stream]);
      if (match || over) {
        watchers.splice(watchers.indexOf(w), 1);
        w.settle(match);
      }
    }
  };
  const told = () => `--- stdout\n${text.stdout}\n--- stderr\n${text.stderr}`;
  return {
    text,
    told,
    add(stream, piece) {
      text[stream] += piece;
      text.output += piece;
      check();
    },
    end() {
      over = true;
      check();
    },
    waitFor: (pattern, stream = "stdout", timeoutMs = 20_000) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const timer = setTimeout(() => {
          watchers.splice(watchers.indexOf(watcher), 1);
          reject(new Error(`timed out waiting for ${pattern} in ${stream} of ${label}:\n${told()}`));
        }, timeoutMs);
        const watcher = {
          pattern,
          stream,
          settle: (match: RegExpExecArray | null) => {
            clearTimeout(timer);
            if (match) resolve(match);
            else reject(new Error(`${label} ended${ended()} before ${pattern} in ${stream}:\n${told()}`));
          },
        };
        watchers.push(watcher);
        check();
      }),
  };
}
