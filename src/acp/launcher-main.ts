// The launcher `spool acp` starts its server through (server.ts): starts the command given as JSON in its last
// argument in a session of its own, its output where the launcher's goes, writes its pid to fd 3 (so the starter
// can tell when it dies), and exits, so the server is nobody's child once the bridge answers.

import { spawn } from "node:child_process";
import { writeSync } from "node:fs";

const [command, args] = JSON.parse(process.argv.at(-1) ?? "[]") as [string, string[]];
const child = spawn(command, args, { detached: true, stdio: ["ignore", "inherit", "inherit"] });
child.unref();
writeSync(3, `${String(child.pid)}\n`);
