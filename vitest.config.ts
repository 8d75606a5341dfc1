import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/*
 * Node 20 reads and parses the file NODE_EXTRA_CA_CERTS names as it starts, before any JavaScript runs (22 and 24
 * only when TLS first needs it): with the system's bundle, as this machine and CI set it, that is ~110 ms of CPU for
 * every node process (`node -e 0`: 0.16 s against 0.05). A run starts ~800 (servers, runners, CLI commands, clients):
 * ~90 of its ~1,070 CPU s. They reach loopback alone, so the variable is kept from them; the processes that reach the
 * npm registry get it back (registryEnv in test/helpers/infra.ts, scripts/test-tools.mjs). Removed here, before
 * vitest starts its workers, so no process of the run has it.
 */
if (process.env.NODE_EXTRA_CA_CERTS) {
  process.env.SPOOL_TEST_NODE_EXTRA_CA_CERTS = process.env.NODE_EXTRA_CA_CERTS;
  delete process.env.NODE_EXTRA_CA_CERTS;
}

/*
 * The suite in two layers (`npm test` runs both; `npm run test:fast` the first alone):
 *
 * - fast: tests in this process — the store, the core, the protocol, an in-process server through a socket or the
 *   memory transport, and `spool` commands run in this process (test/helpers/cli-in-process.ts: what a command says
 *   and does, with its own env, cwd and streams). Seconds each; a developer runs the layer between two edits.
 * - process: tests that start processes of their own (`spool serve`, `spool runner`, the CLI, a sandbox's bwrap
 *   directly), Docker, sshd, PostgreSQL or Chromium, and the in-process ones that take as long (SLOW below).
 *
 * A file's layer is read from what it imports (PROCESS): a test that starts a process says so by its helpers (the ACP
 * and MCP harnesses start `spool acp` and `spool mcp`), so a new test lands in the right layer without a list to keep.
 */
const PROCESS =
  /helpers\/(process|browser|infra|sandbox|postgres|cluster|pty)\.js|(acp|mcp|\.)\/harness\.js|node:child_process|from "execa"|\b(DockerBackend|SshBackend)\b|describeWithBwrap/;
/** In-process files as long as the process layer's (a server flooded, fuzzed or driven through hundreds of turns). */
const SLOW = new Set([
  "test/reliability/hostile.test.ts",
  "test/reliability/fuzz.test.ts",
  "test/agent/compaction.test.ts",
  "test/web/whole-output.test.ts",
  "test/rpc/read-cap.test.ts",
  "test/store/chunk-indexes.test.ts",
  "test/acp/traces.test.ts",
  "test/agent/loop.test.ts",
  "test/features/stream/bulk.test.ts",
  "test/ops/traces.test.ts",
  "test/mcp/long-decision.test.ts",
  "test/mcp/principals.test.ts",
  "test/acp/compaction.test.ts",
  "test/acp/server-additions.test.ts",
]);

/**
 * Files far longer than their size says: they wait on a clock or a child by design (a client's timeout outlasted, a
 * Node per line, a package installed, an image built, a flood drained).
 */
const LONG_FOR_THEIR_SIZE = new Set([
  "test/mcp/long-decision.test.ts",
  "test/store/sqlite-driver.test.ts",
  "test/cli/big-channel.test.ts",
  "test/deploy/runner-image.test.ts",
  "test/packages/install.test.ts",
]);

/**
 * vitest runs a file it has no timing of (a fresh clone, as CI is) in order of size, largest first: a small file that
 * waits long started last, and the run ended waiting on it alone (CI: test/mcp/long-decision.test.ts, 57 lines, was
 * the last of 319 files to start and ran 19 s after the others' last). Those files start first instead, so their
 * waiting overlaps the rest; the rest keeps vitest's order.
 */
class LongFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const long = (file: TestSpecification) => LONG_FOR_THEIR_SIZE.has(relative(source("."), file.moduleId));
    return [...sorted.filter(long), ...sorted.filter((file) => !long(file))];
  }
}

const tests = readdirSync(source("./test"), { recursive: true })
  .map(String)
  .filter((file) => file.endsWith(".test.ts"))
  .map((file) => join("test", file));
const inProcess = (file: string) => !SLOW.has(file) && !PROCESS.test(readFileSync(source(`./${file}`), "utf8"));
const fast = tests.filter(inProcess);
const processes = tests.filter((file) => !inProcess(file));

export default defineConfig({
  resolve: {
    // Tests, and the plugins they load, use the package entry points from source: the same modules as the server under test.
    alias: [
      { find: /^spool\/plugin$/, replacement: source("./src/plugin.ts") },
      { find: /^spool\/client$/, replacement: source("./src/client/index.ts") },
    ],
  },
  test: {
    // The run's own registry of Spool homes (SPOOL_REGISTRY), removed at its end, and each file's temporary
    // directories removed at the file's end: the suite leaves no home recorded for every later sandbox to look at.
    globalSetup: ["test/helpers/per-run-registry.ts"],
    sequence: { sequencer: LongFirst },
    // Three files at a time on two cores: about half of a file's wall time is waiting (a deadline, a process's
    // start, a browser), which a third worker fills (bench/README.md, the `npm test` row).
    maxWorkers: 3,
    projects: [
      {
        extends: true,
        test: {
          name: "fast",
          include: fast,
          setupFiles: ["test/helpers/file-cleanup.ts", "test/helpers/file-cpu.ts", "test/helpers/warm-server.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // A worker imports the server's module graph (~300 modules) once, not once a file: each file still runs in
          // a fresh describe tree, with mocks restored, but shares the worker process and its modules with the files
          // before it, so a file stops what it starts (servers, timers) and restores what it changes (process.env).
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: "process",
          include: processes,
          setupFiles: ["test/helpers/file-cleanup.ts", "test/helpers/file-cpu.ts", "test/helpers/warm-server.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // As the fast layer: the processes these files start are their own, and each file stops what it starts.
          isolate: false,
        },
      },
    ],
  },
});
