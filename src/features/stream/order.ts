/** Calls about one producer wait for the producer's appends that came before them on the same connection. */
export const producerOrder = (p: { run: string; path: string }) => `${p.run}\u0000${p.path}`;
