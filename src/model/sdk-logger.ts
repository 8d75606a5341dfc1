/** The data and raw lines of a server-sent event the SDK could not read as JSON, as its logger was told them. */
export interface Unparsed {
  data?: string;
  raw?: string[];
}

type Log = (message: string, ...rest: unknown[]) => void;

/**
 * The logger both SDKs are given. It keeps one thing: the event an SDK could not parse (it logs the event's data,
 * then its raw lines, before it throws), so the provider can still read a server's error printed as plain or broken
 * text. Everything else is dropped: the SDKs' debug logs carry request headers, and a key reaches no log.
 */
export function sdkLogger(into: Unparsed): { error: Log; warn: Log; info: Log; debug: Log } {
  const ignore: Log = () => {};
  return {
    error(message, value) {
      if (message.startsWith("Could not parse message into JSON") && typeof value === "string") into.data = value;
      else if (message.startsWith("From chunk") && Array.isArray(value)) into.raw = value.map(String);
    },
    warn: ignore,
    info: ignore,
    debug: ignore,
  };
}
