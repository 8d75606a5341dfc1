// The Docker watcher's program, run as a process of its own (watcher.ts starts it): when its stdin ends (the
// runner process that holds the pipe ended, by SIGKILL too), it removes every container labelled with that runner
// process's id, through the same engine (dockerode reads DOCKER_HOST and the rest from the environment it inherits),
// then exits. Arguments: dockerode's resolved path, the label.

import { createRequire } from "node:module";
import type Docker from "dockerode";

const [driver, label] = process.argv.slice(-2) as [string, string];
const Engine = createRequire(driver)(driver) as typeof Docker;

process.stdin.on("error", () => undefined);
process.stdin.on("data", () => undefined);
process.stdin.once("end", async () => {
  try {
    const docker = new Engine();
    const list = await docker.listContainers({ all: true, filters: { label: [label] } });
    await Promise.all(
      list.map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
  } catch {
    // the engine is gone too: nothing is left to remove
  }
  process.exit(0);
});
