// The forwarder inside a sandbox in network mode `allowlist` (egress-launcher.ts starts it before the command): the
// sandbox has a loopback and nothing else, so it listens on 127.0.0.1 (the ports HTTP_PROXY and ALL_PROXY name) and
// passes each connection to the egress proxy's Unix socket, bound into the sandbox, for tools that speak to a proxy
// on a TCP port only. It writes "1" to the ready FIFO (or descriptor) once it listens. The Docker runner starts it outside the container,
// in the container's network namespace (docker-egress.ts), with `stopWithStdin`: it ends when its stdin (a pipe from the
// runner) does. Argument: one JSON object {socket, ports, ready, stopWithStdin?}.

import { closeSync, writeFileSync, writeSync } from "node:fs";
import { connect, createServer } from "node:net";

const options = JSON.parse(process.argv.at(-1) ?? "{}") as { socket: string; ports: number[]; ready: string | number; stopWithStdin?: boolean };
if (options.stopWithStdin) {
  const stop = () => process.exit(0);
  process.stdin.on("end", stop).on("close", stop).resume();
}
let listening = 0;
for (const port of options.ports) {
  const server = createServer((client) => {
    const proxy = connect(options.socket);
    client.on("error", () => proxy.destroy());
    proxy.on("error", () => client.destroy());
    client.pipe(proxy);
    proxy.pipe(client);
  });
  server.on("error", (error) => {
    process.stderr.write(`spool egress: the forwarder cannot listen on 127.0.0.1:${port}: ${error.message}\n`);
    process.exit(1);
  });
  server.listen(port, "127.0.0.1", () => {
    listening += 1;
    if (listening !== options.ports.length) return;
    // A FIFO's path (bwrap), or a descriptor of the runner's (Docker: a socket pair, which has no path to open).
    if (typeof options.ready === "string") writeFileSync(options.ready, "1");
    else {
      writeSync(options.ready, "1");
      closeSync(options.ready);
    }
  });
}
