import { Terminal } from "@xterm/headless";
import { type IPty, spawn as spawnPty } from "node-pty";
import { SPOOL_BIN, stoppedAfterTheFile, stopWithin } from "./process.js";
import { eventually } from "./server.js";

export interface SpoolTerminal {
  pty: IPty;
  /** Everything written to the terminal, escapes included. */
  raw(): string;
  /** The screen as a person sees it now (escapes applied: carriage returns, erases), one string per line, trailing blanks trimmed. */
  screen(): Promise<string>;
  /**
   * Only what is on the terminal's visible rows now (not the scrollback), one entry per line: a row the terminal
   * wrapped is joined to the row it continues, trailing blanks trimmed.
   */
  visible(): Promise<string[]>;
  /** Waits until the raw output matches. */
  waitFor(pattern: RegExp | string, what?: string, timeoutMs?: number): Promise<void>;
  type(keys: string): void;
  exited: Promise<number>;
  kill(): void;
}

/** `spool ARGS` in a real terminal (node-pty), its output also fed to a terminal emulator to read the screen. */
export function spoolInTerminal(args: string[], options: TerminalOptions): SpoolTerminal {
  return inTerminal(process.execPath, [SPOOL_BIN, ...args], options);
}

export interface TerminalOptions {
  cwd: string;
  env?: Record<string, string>;
  cols?: number;
  rows?: number;
}

/** Any program (a shell running several spool commands) in a real terminal, read as spoolInTerminal reads it. */
export function inTerminal(file: string, args: string[], options: TerminalOptions): SpoolTerminal {
  const cols = options.cols ?? 160;
  const rows = options.rows ?? 200;
  const pty = spawnPty(file, args, {
    cols,
    rows,
    cwd: options.cwd,
    env: { ...process.env, SPOOL_LOG: "warn", NO_COLOR: "1", ...options.env } as Record<string, string>,
  });
  const emulator = new Terminal({ cols, rows, allowProposedApi: true, scrollback: 5000 });
  let raw = "";
  let written = Promise.resolve();
  pty.onData((data) => {
    raw += data;
    written = written.then(() => new Promise<void>((resolve) => emulator.write(data, resolve)));
  });
  const exited = new Promise<number>((resolve) => pty.onExit(({ exitCode }) => resolve(exitCode)));
  const kill = (signal?: string) => {
    try {
      pty.kill(signal);
    } catch {
      // already gone
    }
  };
  // A terminal its test left open: SIGHUP (a closed terminal), then SIGKILL if it is still there 10 s later.
  const hangUp = () => {
    kill();
    return exited;
  };
  stoppedAfterTheFile({ stop: () => stopWithin(10_000, hangUp, () => kill("SIGKILL")) }, exited);
  return {
    pty,
    raw: () => raw,
    async screen() {
      await written;
      const buffer = emulator.buffer.active;
      const lines: string[] = [];
      for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? "");
      return lines.join("\n").replace(/\n+$/, "");
    },
    async visible() {
      await written;
      const buffer = emulator.buffer.active;
      const lines: string[] = [];
      for (let i = buffer.viewportY; i < buffer.viewportY + rows; i++) {
        const line = buffer.getLine(i);
        const text = line?.translateToString(false) ?? "";
        if (line?.isWrapped && lines.length > 0) lines[lines.length - 1] += text;
        else lines.push(text);
      }
      return lines.map((l) => l.trimEnd());
    },
    waitFor: (pattern, what = String(pattern), timeoutMs = 30_000) =>
      eventually(() => (typeof pattern === "string" ? raw.includes(pattern) : pattern.test(raw)), timeoutMs, `${what} in:\n${raw}`),
    type: (keys) => pty.write(keys),
    exited,
    kill: () => kill(),
  };
}
