/** Calls each listener with `args`; one that throws keeps none of the others from being told (its failure is its own). */
export function tellEach<A extends unknown[]>(listeners: readonly ((...args: A) => void)[], ...args: A): void {
  for (const listener of listeners) {
    try {
      listener(...args);
    } catch {
      // The listener's own failure.
    }
  }
}
