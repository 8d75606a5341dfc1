import { escapeControl, type palette } from "../../common.js";

/** How one followed command ended: its words (`failed, exit 1`) and whether it succeeded (null: not known here). */
export interface Ending {
  words: string;
  ok: boolean | null;
}

/**
 * What `spool act`/`ask` say of the work when the run ends, and whether a script may go on: "✔ done" only when
 * every command it followed succeeded and no proposal of it was rejected (a failed, killed or cancelled command,
 * a rejection: the work was not done, exit 1), as `gh run watch --exit-status` fails when the run did.
 */
export class Verdict {
  readonly #failed: string[] = [];
  #rejected = 0;

  /** A followed command's end (`command`: as it was proposed). */
  ended(command: string, ending: Ending): void {
    if (ending.ok === false) this.#failed.push(`${escapeControl(command)} — ${ending.words}`);
  }

  rejected(): void {
    this.#rejected++;
  }

  /** Whether the work was done: no command failed, nothing was rejected. */
  get ok(): boolean {
    return this.#failed.length === 0 && this.#rejected === 0;
  }

  /** The run's final line: green "✔ done", red for a failed command, yellow for a rejection. */
  line(colours: ReturnType<typeof palette>): string {
    if (this.#failed.length > 0) {
      const more = this.#failed.length > 1 ? ` (and ${this.#failed.length - 1} more that did not succeed)` : "";
      return colours.red(`✖ not done: ${this.#failed[0]}${more}`);
    }
    if (this.#rejected > 0) return colours.yellow(`✖ not done: ${this.#rejected === 1 ? "a proposal was" : `${this.#rejected} proposals were`} rejected`);
    return colours.green("✔ done");
  }
}
