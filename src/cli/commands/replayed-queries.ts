/*
 * `spool attach` shows the command's output so far before the live part, byte for byte. That output may hold
 * the questions a program asks its terminal (where is the cursor, `ESC[6n`; what are you, `ESC[c`; what is this
 * setting, DECRQSS; what colour is the background, `OSC 11;?`): asked long ago, answered then or never. Shown
 * again, this terminal would answer each, and the answer would come back on its input as if typed, to a
 * program that asks nothing any more. So the replayed part goes through `ReplayedQueries`, which takes those
 * questions out and leaves every other byte as it is; what comes live is the program asking now, and passes.
 */

const ESC = 0x1b;
const BEL = 0x07;
/** A sequence held longer than this is no question (they are short): it goes through as it is. */
const MAX_HELD = 4096;

/**
 * Whether a whole CSI sequence (`ESC [` params intermediates final, as text) asks the terminal for an answer:
 * device status and cursor position (`n`), device attributes (`c`, `>c`, `=c`), DECREQTPARM (`x`), a mode's
 * state (DECRQM, `$p`), the terminal's version (`>q`), the kitty keyboard flags (`?u`), window and font
 * reports (`t` with 11, 13-16, 18-21), xterm's modifier and graphics queries (`?m`, `?S`).
 */
export function isCsiQuery(sequence: string): boolean {
  const m = /^\u001b\[([<=>?]?)([0-9;:]*)([ -/]*)([@-~])$/.exec(sequence);
  if (!m) return false;
  const [, prefix, params, intermediates, final] = m;
  if (intermediates === "$" && final === "p") return true;
  if (intermediates !== "") return false;
  switch (final) {
    case "n":
    case "c":
    case "x":
      return true;
    case "q":
      return prefix === ">";
    case "u":
    case "m":
    case "S":
      return prefix === "?";
    case "t":
      return prefix === "" && /^(1[13-689]|2[01])(;|$)/.test(params!);
    default:
      return false;
  }
}

/** A DCS string's body (after `ESC P`, before ST) that asks: DECRQSS (`$q`) or XTGETTCAP (`+q`). */
const isDcsQuery = (body: string) => /^[0-9;]*[$+]q/.test(body);

/** An OSC string's body (after `ESC ]`, before BEL or ST) that asks: a colour, the clipboard (`4;1;?`, `11;?`, `52;c;?`). */
const isOscQuery = (body: string) => /;\?$/.test(body);

type State = "ground" | "esc" | "csi" | "string" | "string-esc";

/** The replayed part of a command's output with its terminal queries taken out; stateful across chunks. */
export class ReplayedQueries {
  #state: State = "ground";
  /** The bytes of the sequence being read, from its ESC. */
  #held: number[] = [];
  /** OSC or DCS: what the string is. */
  #kind: "osc" | "dcs" | "other" = "other";

  /**
   * `data` with the queries in it taken out when it is `replayed`. Live data passes untouched, but for the rest
   * of a sequence a replayed chunk started (it is judged as replayed).
   */
  push(data: Buffer, replayed: boolean): Buffer {
    if (!replayed && this.#state === "ground") return data;
    const out: number[] = [];
    let i = 0;
    for (; i < data.length; i++) {
      if (!replayed && this.#state === "ground") break;
      this.#byte(data[i]!, out);
    }
    const head = Buffer.from(out);
    return i < data.length ? Buffer.concat([head, data.subarray(i)]) : head;
  }

  /** What is held, given back as it is (the attach ends, or a live part follows a cut sequence). */
  flush(): Buffer {
    const held = Buffer.from(this.#held);
    this.#reset();
    return held;
  }

  #reset(): void {
    this.#state = "ground";
    this.#held = [];
    this.#kind = "other";
  }

  #byte(b: number, out: number[]): void {
    switch (this.#state) {
      case "ground":
        if (b === ESC) {
          this.#state = "esc";
          this.#held = [b];
        } else out.push(b);
        return;
      case "esc":
        this.#held.push(b);
        if (b === 0x5b) this.#state = "csi";
        else if (b === 0x5d || b === 0x50 || b === 0x5f || b === 0x5e || b === 0x58) {
          this.#state = "string";
          this.#kind = b === 0x5d ? "osc" : b === 0x50 ? "dcs" : "other";
        } else if (b === ESC) {
          out.push(ESC);
          this.#held = [b];
        } else this.#emit(out);
        return;
      case "csi":
        this.#held.push(b);
        if (b >= 0x40 && b <= 0x7e) {
          if (isCsiQuery(Buffer.from(this.#held).toString("latin1"))) this.#reset();
          else this.#emit(out);
        } else if (b < 0x20 || b > 0x7e) this.#emit(out);
        else this.#bound(out);
        return;
      case "string":
        if (b === BEL && this.#kind === "osc") {
          this.#endString(out, [b], 0);
          return;
        }
        this.#held.push(b);
        if (b === ESC) this.#state = "string-esc";
        else this.#bound(out);
        return;
      case "string-esc":
        this.#held.push(b);
        if (b === 0x5c) {
          this.#endString(out, [], 2);
          return;
        }
        this.#state = "string";
        this.#bound(out);
        return;
    }
  }

  /** A string ended (`terminator` not held yet; `held` bytes of the held end are its ST). */
  #endString(out: number[], terminator: number[], stBytes: number): void {
    const body = Buffer.from(this.#held.slice(2, this.#held.length - stBytes)).toString("latin1");
    const query = (this.#kind === "osc" && isOscQuery(body)) || (this.#kind === "dcs" && isDcsQuery(body));
    if (query) this.#reset();
    else {
      this.#held.push(...terminator);
      this.#emit(out);
    }
  }

  #bound(out: number[]): void {
    if (this.#held.length > MAX_HELD) this.#emit(out);
  }

  #emit(out: number[]): void {
    for (const b of this.#held) out.push(b);
    this.#reset();
  }
}
