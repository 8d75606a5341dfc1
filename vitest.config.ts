import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests, and the plugins they load, use the package entry points from source: the same modules as the server under test.
    alias: [
      { find: /^spool\/plugin$/, replacement: source("./src/plugin.ts") },
      { find: /^spool\/client$/, replacement: source("./src/client/index.ts") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real servers and processes; two cores do not like many at once.
    maxWorkers: 2,
  },
});
