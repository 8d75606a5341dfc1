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
