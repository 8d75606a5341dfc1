import { StringDecoder } from "node:string_decoder";

/** The longest line held while it is typed; past it, what is typed so far is sent (as a terminal's own line buffer does). */
const MAX_LINE_BYTES = 16 * 1024;

/** What a line typed to a command without a terminal does. */
export interface TypedLinesSink {
  /** Shows keys as they are typed (the terminal is in raw mode: nothing else echoes them). */
  echo(text: string): void;
  /** A finished line, with its newline (or, on Ctrl-D or when too long, what was typed so far). */
  send(text: string): void;
  /** Ctrl-D on an empty line: the end of its input. */
  eof(): void;
  /** Ctrl-C: SIGINT for the command. */
  interrupt(): void;
  /** Ctrl-]: leave it running. */
  detach(): void;
}

/**
 * `spool attach`'s own line editing for a command without a terminal, on a terminal put in raw mode: Enter ends
 * a line with a newline (whatever the terminal's settings turn Enter into: a CR, `stty -icrnl`, a terminal left
 * raw by another program), Backspace and Ctrl-U edit the line before it is sent, Ctrl-D ends the input on an
 * empty line, Ctrl-C interrupts, Ctrl-] detaches at once. Exactly the finished lines are sent, each once.
 */
export class TypedLines {
  #line = "";
  /** In an escape sequence (an arrow key, a function key): dropped until its final byte. */
  #escape: "" | "esc" | "csi" = "";
  readonly #decoder = new StringDecoder("utf8");

  constructor(private readonly sink: TypedLinesSink) {}

  push(data: Buffer): void {
    for (const c of this.#decoder.write(data)) {
      if (this.#escaped(c)) continue;
      this.#key(c);
    }
  }

  #escaped(c: string): boolean {
    if (this.#escape === "esc") {
      this.#escape = c === "[" || c === "O" ? "csi" : "";
      return true;
    }
    if (this.#escape === "csi") {
      const code = c.codePointAt(0)!;
      if (code >= 0x40 && code <= 0x7e) this.#escape = "";
      return true;
    }
    if (c === "\u001b") {
      this.#escape = "esc";
      return true;
    }
    return false;
  }

  #key(c: string): void {
    switch (c) {
      case "\r":
      case "\n":
        this.sink.echo("\r\n");
        this.#flush("\n");
        return;
      case "\u007f":
      case "\b":
        if (this.#line === "") return;
        this.#line = [...this.#line].slice(0, -1).join("");
        this.sink.echo("\b \b");
        return;
      case "\u0015": // Ctrl-U: the line typed so far is erased
        this.sink.echo("\b \b".repeat([...this.#line].length));
        this.#line = "";
        return;
      case "\u0004": // Ctrl-D: what is typed goes now; on an empty line, the end of input
        if (this.#line === "") this.sink.eof();
        else this.#flush("");
        return;
      case "\u0003":
        this.sink.echo("^C\r\n");
        this.#line = "";
        this.sink.interrupt();
        return;
      case "\u001d":
        this.sink.detach();
        return;
    }
    // Other controls are not typed text (a tab is).
    if (c !== "\t" && (c.codePointAt(0)! < 0x20 || (c.codePointAt(0)! >= 0x80 && c.codePointAt(0)! <= 0x9f))) return;
    this.#line += c;
    this.sink.echo(c);
    if (Buffer.byteLength(this.#line) >= MAX_LINE_BYTES) this.#flush("");
  }

  #flush(end: string): void {
    const text = this.#line + end;
    this.#line = "";
    if (text !== "") this.sink.send(text);
  }
}
