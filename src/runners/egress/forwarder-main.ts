// The forwarder inside a sandbox in network mode `allowlist` (runners/sandbox/egress.ts starts it before the command): the
// sandbox has a loopback and nothing else, so it listens on 127.0.0.1 (the ports HTTP_PROXY and ALL_PROXY name) and
// passes each connection to the egress proxy's Unix socket, bound into the sandbox, for tools that speak to a proxy
// on a TCP port only. A service on the host's loopback that the list names with its port (`127.0.0.1:4873`) is
// reached as written: the forwarder listens on that address and port inside too, and opens each connection through
// the proxy (a SOCKS5 CONNECT to it), so the proxy decides and reports it like any other; a port it cannot listen on
// is said on stderr, and the command starts all the same. It writes "1" to the ready FIFO (or descriptor) once it
// listens. The Docker runner starts it outside the container, in the container's network namespace (runners/docker/egress.ts),
// with `stopWithStdin`: it ends when its stdin (a pipe from the runner) does. Argument: one JSON object {socket, ports,
// ready, stopWithStdin?, targets?, targetsFile?}; `targetsFile` (a JSON list like `targets`) is read when it exists.
// Node's own modules only: the file is copied alone into the sandbox's proxy directory.

import { closeSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { connect, createServer, isIPv4, type Socket } from "node:net";

interface Target {
  host: string;
  port: number;
}

const options = JSON.parse(process.argv.at(-1) ?? "{}") as {
  socket: string;
  ports: number[];
  ready: string | number;
  stopWithStdin?: boolean;
  targets?: Target[];
  targetsFile?: string;
};
if (options.stopWithStdin) {
  const stop = () => process.exit(0);
  process.stdin.on("end", stop).on("close", stop).resume();
}

/** The listed host-loopback services, from the options or the file beside the program. */
function targets(): Target[] {
  if (options.targets) return options.targets;
  if (!options.targetsFile) return [];
  try {
    return JSON.parse(readFileSync(options.targetsFile, "utf8")) as Target[];
  } catch {
    return [];
  }
}

/** A SOCKS5 CONNECT (no authentication) to an address: the greeting and the request, sent together. */
function socksRequest(target: Target): Buffer {
  const address = isIPv4(target.host) ? Buffer.from(target.host.split(".").map(Number)) : ipv6Bytes(target.host);
  const port = Buffer.from([target.port >> 8, target.port & 0xff]);
  return Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, address.length === 4 ? 1 : 4]), address, port]);
}

function ipv6Bytes(address: string): Buffer {
  const [head = "", tail] = address.split("::");
  const words = (part: string) => (part === "" ? [] : part.split(":").map((w) => Number.parseInt(w, 16)));
  const front = words(head);
  const back = tail === undefined ? [] : words(tail);
  const all = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  const bytes = Buffer.alloc(16);
  for (const [i, word] of all.entries()) bytes.writeUInt16BE(word, i * 2);
  return bytes;
}

/** The proxy's answers to the greeting (2 bytes) and the request (10 for an IPv4 bound address, 22 for IPv6); null: more needed. */
function socksReply(bytes: Buffer): { ok: boolean; length: number } | null {
  if (bytes.length < 5) return null;
  const length = 2 + (bytes[5] === 4 ? 22 : 10);
  if (bytes.length < length) return null;
  return { ok: bytes[0] === 5 && bytes[1] === 0 && bytes[3] === 0, length };
}

/** One connection to a listed service: through the proxy, which decides and reports it. */
function throughProxy(client: Socket, target: Target): void {
  client.pause();
  const proxy = connect(options.socket);
  client.on("error", () => proxy.destroy());
  proxy.on("error", () => client.destroy());
  client.on("close", () => proxy.destroy());
  // The proxy gone before its answer (refused, or stopped): so is the client's connection.
  const gone = () => client.destroy();
  proxy.once("close", gone);
  proxy.write(socksRequest(target));
  let answer = Buffer.alloc(0);
  const onAnswer = (chunk: Buffer) => {
    answer = Buffer.concat([answer, chunk]);
    const reply = socksReply(answer);
    if (reply === null) return;
    proxy.off("data", onAnswer);
    proxy.off("close", gone);
    if (!reply.ok) {
      proxy.destroy();
      client.destroy();
      return;
    }
    const rest = answer.subarray(reply.length);
    if (rest.length > 0) client.write(rest);
    client.pipe(proxy);
    proxy.pipe(client);
    client.resume();
  };
  proxy.on("data", onAnswer);
}

const listeners: { host: string; port: number; target: Target | null }[] = [
  ...options.ports.map((port) => ({ host: "127.0.0.1", port, target: null })),
  ...targets().map((target) => ({ host: target.host, port: target.port, target })),
];
let settled = 0;
const settle = () => {
  settled += 1;
  if (settled !== listeners.length) return;
  // A FIFO's path (bwrap), or a descriptor of the runner's (Docker: a socket pair, which has no path to open).
  if (typeof options.ready === "string") writeFileSync(options.ready, "1");
  else {
    writeSync(options.ready, "1");
    closeSync(options.ready);
  }
};
for (const { host, port, target } of listeners) {
  const server = createServer((client) => {
    if (target) return throughProxy(client, target);
    const proxy = connect(options.socket);
    client.on("error", () => proxy.destroy());
    proxy.on("error", () => client.destroy());
    client.pipe(proxy);
    proxy.pipe(client);
  });
  server.on("error", (error) => {
    if (target) {
      process.stderr.write(
        `spool egress: ${host}:${port} is on the list, but it cannot be reached as written inside (${error.message}); reach it through the proxy\n`,
      );
      return settle();
    }
    process.stderr.write(`spool egress: the forwarder cannot listen on 127.0.0.1:${port}: ${error.message}\n`);
    process.exit(1);
  });
  server.listen(port, host, settle);
}
