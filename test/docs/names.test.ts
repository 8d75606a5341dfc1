import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

/*
 * Every path the code and the documents name exists: a comment or page that names src/x.ts, test/y.test.ts,
 * docs/z.md or scripts/w.sh points at a file that is there (a .js path names its .ts source). A path in another
 * repository is written with its name first (`acpx:src/acp/client.ts`) and is not looked for here; bench/history/
 * is a diary of what was, and keeps the names of its day.
 */

const repo = fileURLToPath(new URL("../..", import.meta.url));
const ROOTS = ["src", "test", "bench", "scripts", "docs", "migrations", ".ci"];
const TOP = ["README.md", "SPEC.md", "PLUGINS.md", "package.json", "vitest.config.ts", "tsconfig.json"];
/** A path from one of the roots, not part of a longer word, path or `repo:path`. */
const PATH = /(?<![\w./:@-])((?:src|test|bench|scripts|docs|migrations)\/[\w./-]*\.(?:ts|md|mjs|js|sh|json|css|html))/g;
/** Files whose paths are their test's data: a link checker's examples. */
const DATA = new Set(["test/docs/links.test.ts", "test/docs/names.test.ts"]);

const files = (): string[] =>
  [
    ...ROOTS.flatMap((root) =>
      existsSync(join(repo, root))
        ? readdirSync(join(repo, root), { recursive: true })
            .map(String)
            .map((file) => join(root, file))
        : [],
    ),
    ...TOP,
  ].filter((file) => /\.(ts|md|mjs|sh|json)$|^\.ci\/run$/.test(file) && !/(^|\/)(fixtures|history)\//.test(file) && !DATA.has(file));

it("every path named in code and docs exists", () => {
  const missing: string[] = [];
  for (const file of files()) {
    const text = readFileSync(join(repo, file), "utf8");
    for (const [, path] of text.matchAll(PATH)) {
      if (existsSync(join(repo, path!)) || (path!.endsWith(".js") && existsSync(join(repo, path!.replace(/\.js$/, ".ts"))))) continue;
      missing.push(`${file} names ${path}`);
    }
  }
  expect([...new Set(missing)]).toEqual([]);
});
