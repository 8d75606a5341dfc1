#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader, so no build step is needed.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2));
// A command is over when main returns: nothing left open (a socket, a timer, stdin) may keep it alive.
// Writes to pipes and files are synchronous here, so exiting loses no output.
process.exit(code);
