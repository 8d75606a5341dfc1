import { describe, expect, it } from "vitest";
import { completionWords, helpText, optionsOf, parseSpec } from "../../src/cli/command-spec.js";
import { commandTable } from "../../src/cli/main.js";

/** The options a help describes: its option lines (`  -f, --follow  …`), not options named in a sentence. */
const described = (help: string) => [...help.matchAll(/^ {2}((?:-[a-zA-Z], )?--[a-z][a-z-]*)(?=[ ,]|$)/gm)].flatMap((m) => m[1]!.split(", ")).sort();

/** Issue 41 / 38 point 7: one table parses each command's arguments, writes its --help and its Tab completion. */
describe("the command table", () => {
  it("each command's help describes exactly the options it parses, and completion offers exactly those", async () => {
    const table = await commandTable();
    expect(Object.keys(table).length).toBeGreaterThan(20);
    for (const [name, spec] of Object.entries(table)) {
      const words = completionWords(spec);
      expect(described(helpText(spec)), name).toEqual(words);
      for (const word of words) {
        // Every word offered is taken (a string option with a value), none refused as unknown.
        const option = Object.entries(optionsOf(spec)).find(([long, o]) => word === `--${long}` || word === `-${o.short}`)?.[1];
        expect(() => parseSpec(spec, option?.type === "string" ? [word, "x"] : [word]), `${name} ${word}`).not.toThrow();
      }
      expect(() => parseSpec(spec, ["--no-such-option"]), name).toThrow(/Unknown option '--no-such-option'/);
    }
    for (const command of ["ask", "act", "models"]) expect(completionWords(table[command]!), command).not.toContain("--demo-model");
    expect(completionWords(table.serve!)).toContain("--demo-model");
  });

  it("a short option mistyped as another is matched to the long one it may mean", async () => {
    const { runs } = await commandTable();
    expect(() => parseSpec(runs!, ["--quite"])).toThrow(/did you mean --quiet\?.*spool help runs/);
  });
});
