import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { type AddressInfo, createServer, isIPv4, type Server } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { isInternalAddress } from "../../src/runners/egress/policy.js";

/** A test server that counts the connections it saw: "nothing reached it" is seen, not assumed. */
export interface Listener {
  port: number;
  connections: number;
  /** Requests (HTTP), handshakes (TLS) or bytes (raw) it received: a connection opened and closed unused counts 0. */
  received: number;
  close(): Promise<void>;
}

function listener(server: Server): Listener {
  const counted = { port: 0, connections: 0, received: 0, close: () => new Promise<void>((done) => server.close(() => done())) };
  server.on("connection", () => (counted.connections += 1));
  return counted;
}

async function listen(server: Server, counted: Listener, address: string): Promise<Listener> {
  await new Promise<void>((done) => server.listen(0, address, done));
  counted.port = (server.address() as AddressInfo).port;
  return counted;
}

/** An HTTP server on `address` answering `hello <Host>`. */
export async function httpListener(address: string): Promise<Listener> {
  let counted: Listener | null = null;
  const server: HttpServer = createHttpServer((req, res) => {
    counted!.received += 1;
    res.end(`hello ${req.headers.host}\n`);
  });
  counted = listener(server);
  return await listen(server, counted, address);
}

/** A raw TCP server that answers each line with `raw: <line>`. */
export async function rawListener(address: string): Promise<Listener> {
  let counted: Listener | null = null;
  const server: Server = createServer((socket) => {
    socket.setEncoding("utf8");
    socket.on("data", (line: string) => {
      counted!.received += Buffer.byteLength(line);
      socket.end(`raw: ${line}`);
    });
  });
  counted = listener(server);
  return await listen(server, counted, address);
}

/**
 * A TLS server on `address` (a certificate for `name`, made with the openssl command) answering each request with
 * `hello tls <the server name the client asked for>`; null when openssl is not on PATH.
 */
export async function tlsListener(address: string, name: string): Promise<Listener | null> {
  const dir = mkdtempSync(join(tmpdir(), "spool-tls-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        `/CN=${name}`,
        "-keyout",
        "key",
        "-out",
        "cert",
      ],
      { cwd: dir, stdio: "ignore" },
    );
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  const key = readFileSync(join(dir, "key"));
  const cert = readFileSync(join(dir, "cert"));
  rmSync(dir, { recursive: true, force: true });
  let counted: Listener | null = null;
  const server = createTlsServer({ key, cert }, (socket) => {
    counted!.received += 1;
    socket.on("error", () => socket.destroy());
    socket.once("data", () => {
      const body = `hello tls ${(socket as unknown as { servername?: string | false }).servername || "(no name)"}\n`;
      socket.end(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
    });
  });
  server.on("tlsClientError", () => {});
  counted = listener(server);
  return await listen(server, counted, address);
}

/** An IPv4 address of this machine that the egress proxy takes for one on the internet (not loopback, private, …); null: none. */
export function outsideAddress(): string | null {
  for (const list of Object.values(networkInterfaces()))
    for (const entry of list ?? []) if (isIPv4(entry.address) && !isInternalAddress(entry.address)) return entry.address;
  return null;
}
