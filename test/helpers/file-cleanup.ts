import { afterAll } from "vitest";
import { removeTempDirs } from "./server.js";

/*
 * vitest's setupFiles, run before each test file: the directories the file made with `tempDir` (homes, roots, token
 * files, workspaces) are removed when the file's tests have ended, after its own afterAll hooks (vitest runs a
 * suite's afterAll hooks last registered first, and these are registered before the file's).
 */
afterAll(() => removeTempDirs());
