import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { type AddressInfo, createServer, type Server } from "node:net";

/** A test server that counts the connections it saw: "nothing reached it" is seen, not assumed. */
export interface Listener {
  port: number;
  connections: number;
  close(): Promise<void>;
}

/** An HTTP server on `address` answering `hello <Host>`. */
export async function httpListener(address: string): Promise<Listener> {
  const server: HttpServer = createHttpServer((req, res) => res.end(`hello ${req.headers.host}\n`));
  const listener = { port: 0, connections: 0, close: () => new Promise<void>((done) => server.close(() => done())) };
  server.on("connection", () => (listener.connections += 1));
  await new Promise<void>((done) => server.listen(0, address, done));
  listener.port = (server.address() as AddressInfo).port;
  return listener;
}

/** A raw TCP server that answers each line with `raw: <line>`. */
export async function rawListener(address: string): Promise<Listener> {
  const server: Server = createServer((socket) => {
    socket.setEncoding("utf8");
    socket.on("data", (line: string) => socket.end(`raw: ${line}`));
  });
  const listener = { port: 0, connections: 0, close: () => new Promise<void>((done) => server.close(() => done())) };
  server.on("connection", () => (listener.connections += 1));
  await new Promise<void>((done) => server.listen(0, address, done));
  listener.port = (server.address() as AddressInfo).port;
  return listener;
}
