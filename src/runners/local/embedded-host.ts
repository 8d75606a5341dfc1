import type { SandboxInfo } from "../../protocol/runner.js";
import type { ConnectionHandle, ProjectRef } from "../../rpc/connection-context.js";

/** The embedded local runner: attached on first use, inside the server process. */
export interface EmbeddedRunnerHost {
  readonly name: string;
  /** Starts (once per project) the embedded runner and waits until it has attached. */
  ensure(project: ProjectRef): Promise<void>;
  /** Whether this connection is the embedded runner's own. */
  owns(connection: ConnectionHandle): boolean;
  /** Where it would run read-only work (for runner/list before it has started). */
  sandbox(): Promise<SandboxInfo>;
  stopAll(): Promise<void>;
}
