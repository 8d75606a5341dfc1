import { afterAll } from "vitest";
import { stopLeftRunning } from "./process.js";
import { removeTempDirs } from "./server.js";

/*
 * vitest's setupFiles, run before each test file: when the file's tests have ended (after its own afterAll hooks:
 * vitest runs a suite's afterAll hooks last registered first, and these are registered before the file's), the
 * subprocesses and terminals it left running are stopped, then the directories it made with `tempDir` (homes,
 * roots, token files, workspaces) are removed: a test home left behind stays recorded in the registry of Spool homes
 * (home/registry.ts) for the run.
 */
afterAll(async () => {
  await stopLeftRunning();
  removeTempDirs();
});
