/** An error response from the server, with the catalogue's string code. */
export class SpoolRpcError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly data: { code?: string; [key: string]: unknown } | undefined,
  ) {
    super(message);
  }

  /** The catalogue name (`NOT_FOUND`, `SEQ_GAP`, …). */
  get errorCode(): string | undefined {
    return this.data?.code;
  }
}

/** The connection closed before the server answered: the call may or may not have taken effect. */
export class ConnectionClosedError extends Error {
  override readonly name = "ConnectionClosedError";
}

/** A call given a deadline (`callTimeoutMs`, `timeoutMs`) was not answered within it; its answer, if it comes, is ignored. */
export class CallTimeoutError extends Error {
  override readonly name = "CallTimeoutError";
}

/**
 * An accept refused because the proposal's facts changed since those the client showed (FACTS_CHANGED: its runner's
 * server stopped and another server's runner takes it); nothing ran, and the client shows the new facts and asks again.
 */
export const factsChanged = (error: unknown): error is SpoolRpcError => error instanceof SpoolRpcError && error.errorCode === "FACTS_CHANGED";
