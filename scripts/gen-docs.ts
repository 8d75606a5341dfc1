// Regenerates the tables in SPEC.md and PLUGINS.md from the method schemas,
// the error catalogue and the hook list. `--check` fails if they are stale.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { clientApiSource } from "../src/docs/client-types.js";
import { docSections, regenerate } from "../src/docs/generate.js";
import { createLogger } from "../src/logger.js";
import { startServer } from "../src/server.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const check = process.argv.includes("--check");
const home = mkdtempSync(join(tmpdir(), "spool-docs-"));
const server = await startServer({ home, port: 0, env: {}, logger: createLogger("silent") });
let stale = false;
try {
  for (const [file, sections] of Object.entries(docSections(server.rpc.registry))) {
    const fresh = regenerate(join(root, file), sections, !check);
    if (!fresh) {
      stale = true;
      console.log(check ? `${file} is out of date; run npm run docs` : `${file} updated`);
    }
  }
  const apiFile = join(root, "src/client/api.ts");
  const api = clientApiSource(server.rpc.registry);
  let current = "";
  try {
    current = readFileSync(apiFile, "utf8");
  } catch {
    // not generated yet
  }
  if (current !== api) {
    stale = true;
    if (!check) writeFileSync(apiFile, api);
    console.log(check ? "src/client/api.ts is out of date; run npm run docs" : "src/client/api.ts updated");
  }
} finally {
  await server.stop();
  rmSync(home, { recursive: true, force: true });
}
process.exitCode = check && stale ? 1 : 0;
