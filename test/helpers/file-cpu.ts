import { appendFileSync, readFileSync } from "node:fs";
import { relative } from "node:path";
import { afterAll, beforeAll } from "vitest";

/*
 * vitest's setupFiles, run before each test file: with SPOOL_TEST_CPU_LOG set to a path, each file's wall time and the
 * CPU its worker spent on it, when it ended (ms since the epoch: a timeline of the run), its own and its ended children's (servers, CLI runs, Chromium, compilers: what was
 * reaped while the file ran), are appended there as a line of JSON. Where the suite's time goes; off by default.
 * Docker containers' CPU is the engine's, not counted.
 */
const log = process.env.SPOOL_TEST_CPU_LOG;
if (log) {
  const ticks = 100; // USER_HZ on Linux
  /** utime, stime, cutime, cstime of this process, in seconds (/proc/self/stat fields 14-17). */
  const cpu = () => {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields.slice(11, 15).map((n) => Number(n) / ticks);
  };
  let start = { at: 0, cpu: [0, 0, 0, 0] };
  let file = "";
  // biome-ignore lint/correctness/noEmptyPattern: vitest reads the first parameter as a fixture pattern; the suite is the second
  beforeAll(({}, suite) => {
    file = relative(process.cwd(), suite.file.filepath);
    start = { at: performance.now(), cpu: cpu() };
  });
  afterAll(() => {
    const [user, sys, childUser, childSys] = cpu().map((n, i) => +(n - (start.cpu[i] ?? 0)).toFixed(2));
    const wall = +((performance.now() - start.at) / 1000).toFixed(2);
    appendFileSync(log, `${JSON.stringify({ file, wall, user, sys, childUser, childSys, end: Date.now() })}\n`);
  });
}
