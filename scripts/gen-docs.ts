// Regenerates SPEC.md's index, the tables in docs/spec/ and PLUGINS.md from the protocol's descriptors (src/protocol), the error
// catalogue and the hook list, without starting a server. `--check` fails if they are stale.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { docSections, locateSections, regenerate } from "../src/docs/generate.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const check = process.argv.includes("--check");
let stale = false;
for (const [file, sections] of Object.entries(locateSections(root, docSections(undefined, root)))) {
  const fresh = regenerate(join(root, file), sections, !check);
  if (!fresh) {
    stale = true;
    console.log(check ? `${file} is out of date; run npm run docs` : `${file} updated`);
  }
}
process.exitCode = check && stale ? 1 : 0;
