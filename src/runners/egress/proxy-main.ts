// The egress proxy's program, run as a process of its own beside a sandboxed command in network mode `allowlist`
// (runners/sandbox/egress.ts starts it; the proxy is proxy.ts): it listens on the Unix socket the sandbox gets, writes
// "1" on its ready descriptor once it does, tells each host it allowed or refused on its stderr (the command's), writes
// what it allowed and refused to the summary file when it is told to stop (SIGTERM), and then exits.
// With `stopWithStdin`, the end of its stdin (a pipe from the runner, which the runner's death closes) stops it too.
// Argument: one JSON object {socket, allow, hosts?, readyFd, summary, stopWithStdin?}.

import { closeSync, writeFileSync, writeSync } from "node:fs";
import { EgressPolicy } from "./policy.js";
import { startEgressProxy } from "./proxy.js";

interface Options {
  socket: string;
  allow: string[];
  hosts?: Record<string, string>;
  readyFd: number;
  summary: string;
  stopWithStdin?: boolean;
}

const options = JSON.parse(process.argv.at(-1) ?? "{}") as Options;
const policy = new EgressPolicy({ allow: options.allow, hosts: options.hosts ?? {}, report: (line) => process.stderr.write(`${line}\n`) });
// Bundled as CommonJS from the sources (program.ts): no top-level await.
void startEgressProxy(options.socket, policy).then(
  (server) => {
    const stop = () => {
      server.close();
      try {
        writeFileSync(options.summary, JSON.stringify({ allowed: [...policy.allowed], blocked: [...policy.blocked] }));
      } catch {
        // the launcher's directory is gone: nothing to record
      }
      process.exit(0);
    };
    process.on("SIGTERM", stop);
    if (options.stopWithStdin) process.stdin.on("end", stop).on("close", stop).resume();
    writeSync(options.readyFd, "1");
    closeSync(options.readyFd);
  },
  (error: Error) => {
    process.stderr.write(`spool egress: the proxy cannot listen on ${options.socket}: ${error.message}\n`);
    process.exit(1);
  },
);
