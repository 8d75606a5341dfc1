/** A project as a connection sees it after `initialize`. */
export interface ProjectRef {
  id: number;
  name: string;
  root: string;
}

/** What a handler knows about the connection that called it. */
export interface ConnectionContext {
  connection: ConnectionHandle;
  /** The initialized project; methods with access "none" may see null. */
  project: ProjectRef;
  /** Sends a notification to this connection only. */
  notify(method: string, params: unknown): void;
}

export interface ConnectionHandle {
  readonly id: string;
  readonly project: ProjectRef | null;
  readonly clientInfo: { name: string; version: string } | null;
  /** Per-connection state owned by plugins, keyed by plugin-chosen symbols or names. */
  readonly state: Map<string | symbol, unknown>;
  /** Binds the connection to a project (what `initialize` does); a second call throws. */
  join(project: ProjectRef, clientInfo: { name: string; version: string } | null): void;
  notify(method: string, params: unknown): void;
  /** Server → client request (used by runners); rejects when the connection closes. */
  request(method: string, params: unknown, timeoutMs?: number): Promise<unknown>;
  bufferedAmount(): number;
  onClose(listener: () => void): void;
  close(code?: number, reason?: string): void;
  readonly closed: boolean;
}
