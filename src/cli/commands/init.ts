import { rmSync } from "node:fs";
import { commandOf, defineCommand } from "../command-spec.js";
import { withClient, workingDirectory } from "../common.js";
import { EXIT, explain, usageError } from "../errors.js";
import { writeMarker } from "../project.js";

const INIT_SPEC = defineCommand({
  name: "init",
  usage: "spool init [NAME]",
  about: `Makes this directory a Spool project's root: writes .spool/project.json naming the
project (NAME, default: derived from the directory's name). Commands run here or
below use that project. When the server is running, the project is registered
there too (a NAME the server already has for another directory is refused);
when it is not, the first command run here registers it (with an admin's
credential, as the home's token is).`,
  connects: true,
  maxArgs: 1,
  options: {},
});

export const INIT = commandOf(INIT_SPEC, async (values, rest) => {
  if (values.project) throw usageError("spool init takes the project's name as its argument, not --project");
  const here = workingDirectory();
  const made = writeMarker(here, rest[0]);
  process.stdout.write(`${made.existed ? "already a Spool project" : "initialized Spool project"} "${made.name}" in ${here} (${made.marker})\n`);
  try {
    await withClient(values, async () => undefined, { create: true });
    process.stdout.write(`registered on the server\n`);
  } catch (error) {
    if (explain(error, null).code === EXIT.connection) {
      process.stdout.write(`the server is not running; the first command run here registers the project\n`);
      return EXIT.ok;
    }
    // The server has that name for another directory: leave no marker that every command would trip on.
    if (!made.existed) rmSync(made.marker);
    throw error;
  }
  return EXIT.ok;
});
