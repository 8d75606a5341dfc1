import type { SpoolClient } from "../../client/spool-client.js";
import type { Logger } from "../../logger.js";
import type { Backend } from "../backend.js";

/** How a runner connects, what it runs on and what it tells. */
export interface RunnerClientOptions {
  /** Opens a fresh connection to the server (WebSocket, or in-process for the embedded runner). */
  connect: () => Promise<SpoolClient>;
  project: string;
  name: string;
  backend: Backend;
  default?: boolean;
  /** With default: take the default from the runner that has it. */
  replaceDefault?: boolean;
  labels?: Record<string, string>;
  /** Commands it runs at once (SPEC §7 "Pools"): the server sends no more, and it starts no more; absent: no limit. */
  capacity?: number;
  /**
   * Where the project root is on the backend. Without it, local runners use
   * the server's absolute path and remote ones run relative to their default
   * directory (container WORKDIR, login directory).
   */
  root?: string;
  /** Unacknowledged chunks per channel. */
  window?: number;
  /** Unacknowledged calls on the whole connection (never more than the server allows). */
  maxInFlight?: number;
  maxChunkBytes?: number;
  /** A chunk the server refuses with an internal error (its store busy) is sent again: how often, and after how long (ChannelSender's defaults: 8 times, from 100 ms doubling to 3.2 s). */
  chunkRetry?: { attempts?: number; delayMs?: (attempt: number) => number };
  log: Logger;
  /** Reconnect delays: doubles from `min` up to `max`. */
  backoffMs?: { min: number; max: number };
  /** Names (or `*` patterns) of this runner's environment variables that commands also get, besides those the server's commandEnv names. */
  passEnv?: string[];
  /** The runner's environment, where passed names take their values; default process.env. */
  environ?: NodeJS.ProcessEnv;
  /** Paths of this runner's own state (its home, token file, SSH key): a sandboxed command whose view would hold one is refused, besides those the server names. */
  secrets?: string[];
  /** Told when a command starts and when it ends (for the runner's one line per command). */
  onCommand?: (event: CommandEvent) => void;
}

/** A command this runner took: when it started, and how it ended. */
export type CommandEvent =
  | { kind: "started"; run: string; path: string; command: string }
  | {
      kind: "ended";
      run: string;
      path: string;
      /** How it ended, for people: "exit 0", "signal SIGKILL", "timed out after 1000 ms", "cancelled: …", "failed to start: …". */
      outcome: string;
      durationMs: number;
    };
