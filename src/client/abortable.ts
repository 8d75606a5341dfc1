/**
 * `call`, or `signal`'s reason as soon as it aborts. The listener goes when the call settles: one signal shared by
 * many calls (a session's, say) holds none of them. An aborted call's reply (or its rejection at close) is no longer
 * awaited by anyone.
 */
export function abortable<T>(call: Promise<T>, signal: AbortSignal): Promise<T> {
  call.catch(() => undefined);
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([call, aborted]).finally(() => signal.removeEventListener("abort", onAbort));
}
