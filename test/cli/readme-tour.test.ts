import { readFileSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";

/** The README's CLI tour: the shell block after "With a real model". */
function tourLines(): string[] {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const from = readme.indexOf("With a real model (see the next sections for endpoints):");
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(from))![1]!;
  return block
    .split("\n")
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l.startsWith("spool "));
}

async function help(command: string): Promise<{ code: number; text: string }> {
  let text = "";
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    text += String(chunk);
    return true;
  });
  try {
    return { code: await main(["help", command]), text };
  } finally {
    write.mockRestore();
  }
}

describe("the README's CLI tour", () => {
  it("names only commands and options that exist", async () => {
    const lines = tourLines();
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) {
      const [, command, ...rest] = line.split(/\s+/);
      if (command === "help") continue;
      const { code, text } = await help(command!);
      expect(code, line).toBe(0);
      for (const option of rest.filter((w) => /^-{1,2}[a-z]/.test(w)).map((w) => w.replace(/^\[/, ""))) {
        expect(text, `${line}: ${option}`).toContain(option);
      }
    }
  });
});
