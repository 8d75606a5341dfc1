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
    // The run's own registry of Spool homes (SPOOL_REGISTRY), removed at its end, and each file's temporary
    // directories removed at the file's end: the suite leaves no home recorded for every later sandbox to look at.
    globalSetup: ["test/helpers/per-run-registry.ts"],
    setupFiles: ["test/helpers/file-cleanup.ts", "test/helpers/file-cpu.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Three files at a time on two cores: about half of a file's wall time is waiting (a deadline, a process's
    // start, a browser), which a third worker fills. On this 2-core machine, quiet, with the tests' tools installed
    // (test-infra.sh): 424 s with 2 workers, 339 s with 3 (bench/README.md, "npm test"). 4 was tried only on a
    // loaded machine (405 s, every file passed).
    maxWorkers: 3,
    // A worker imports the server's module graph (~300 modules) once, not once a file: each file still runs in a fresh
    // describe tree, with mocks restored, but shares the worker process and its modules with the files before it, so
    // a file stops what it starts (servers, processes, timers) and restores what it changes (process.env). Measured on
    // test/features (14 files, 125 tests): 210 s of wall time isolated, 75 s not (a busy machine; issue 49); every file
    // (1,184 tests, the package install apart) passed this way in two halves of 509 s and 486 s on that busy machine.
    isolate: false,
  },
});
