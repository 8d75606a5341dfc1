import { readFileSync } from "node:fs";
import { expect } from "vitest";

/*
 * vitest's setupFiles, run before each test file: for a file that starts servers (through these helpers), the
 * server's module graph (~300 modules, which helpers/server.ts imports when a file first starts one) is loaded here,
 * where no clock runs, and not inside the file's first beforeAll, whose 60-s hookTimeout included it: beside two CI
 * runs (load 20-25) the import took 52 s and three files' first hooks timed out. Isolation is off, so a worker loads
 * it once; later files find it loaded. A file that starts none (a unit test run alone) does not wait for it.
 */
const STARTS_SERVERS = /helpers\/(server|browser|process|cluster|sandbox)\.js|harness\.js|startTestServer/;
const file = expect.getState().testPath;
if (file && STARTS_SERVERS.test(readFileSync(file, "utf8"))) await import("../../src/server/server.js");
