/** The most notifications kept while held; past it they are let through (out of order, but memory stays bounded). */
const MOST_HELD = 20_000;

/**
 * What the server says about a run, held while something else owns the screen, then replayed in order: before
 * the run's first line is printed (a fast model streams before run/create answers), and while a followed
 * command's output is still arriving (the model can read a command's end and reply long before this client has
 * written all of its output, to a slow pipe or a file: its words would land inside the output). Each block of
 * output ends before the next one starts.
 */
export class Held {
  #holds = 0;
  #queue: (() => void)[] = [];
  /** Past MOST_HELD: everything goes through until nothing holds. */
  #passing = false;

  /** Holds from now until the returned function is called (once; later calls do nothing). */
  hold(): () => void {
    this.#holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      if (this.#holds === 0) this.#passing = false;
      this.#flush();
    };
  }

  /** `handler` runs now, or once nothing holds. */
  run(handler: () => void): void {
    if (this.#holds > 0 && !this.#passing && this.#queue.length < MOST_HELD) {
      this.#queue.push(handler);
      return;
    }
    if (!this.#passing && this.#holds > 0) {
      this.#passing = true;
      this.#flush();
    }
    handler();
  }

  /** A handler of notifications that waits its turn. */
  wrap<T>(handler: (p: T) => void): (p: T) => void {
    return (p) => this.run(() => handler(p));
  }

  #flush(): void {
    // A replayed handler may hold again (it starts following a command): the rest waits for that one.
    while ((this.#holds === 0 || this.#passing) && this.#queue.length > 0) this.#queue.shift()!();
  }
}
