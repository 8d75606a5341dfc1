import { afterAll, beforeAll, expect, it } from "vitest";
import type { ExecSpec } from "../../src/runners/backend.js";
import { DockerBackend } from "../../src/runners/docker/docker.js";
import { clientHelloFor } from "../helpers/client-hello.js";
import { describeWithInfra, infra } from "../helpers/infra.js";
import { httpListener, type Listener, outsideAddress, rawListener } from "../helpers/listeners.js";
import { printfBytes, socksConnect } from "../helpers/socks.js";

/**
 * Network mode `allowlist` on the Docker runner (SPEC §7 Runners, "Sandbox modes"), enforced from outside the
 * container (docker-egress.ts): a busybox container (no node, no socat) on `--network none`, the egress proxy beside it
 * and the forwarder in its network namespace. Test hosts are names the proxy's resolver maps to loopback addresses of
 * the runner's machine; each listener counts its connections, so "nothing reached it" is seen, not assumed.
 */

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

describeWithInfra("docker", "network mode allowlist on the Docker runner", () => {
  let allowed: Listener;
  let unlisted: Listener;
  let raw: Listener;
  let backend: DockerBackend;
  beforeAll(async () => {
    allowed = await httpListener("127.0.0.2");
    unlisted = await httpListener("127.0.0.3");
    raw = await rawListener("127.0.0.4");
    // The runner's own network is the host's: what the allowlist cuts is seen (a direct connection would reach the listeners).
    backend = new DockerBackend({
      image: infra.dockerImage!,
      network: "host",
      egressHosts: { "allowed.test": "127.0.0.2", "evil.test": "127.0.0.3", "raw.test": "127.0.0.4" },
      killGraceMs: 500,
    });
  });
  afterAll(async () => {
    await Promise.all([allowed?.close(), unlisted?.close(), raw?.close()]);
    await backend?.close();
  });

  async function run(command: string, allow: string[] = ["allowed.test", "raw.test"]) {
    const spec: ExecSpec = {
      command,
      env: {},
      sandbox: { mode: "workspace-write", egress: { allow } },
      timeoutMs: 30_000,
      signal: new AbortController().signal,
    };
    const execution = await backend.start(spec);
    const [out, err, result] = await Promise.all([text(execution.stdout), text(execution.stderr), execution.result]);
    return { out, err, code: result.exitCode, egress: result.egress };
  }

  it("the runner offers the mode (root, nsenter, the engine on this machine)", async () => {
    const sandbox = await backend.sandbox();
    expect(sandbox.egress).toBe(true);
    expect(sandbox.detail).toContain("network allowlist: no network, an egress proxy outside the container its one way out");
  });

  it("an allowed host answers through wget, which honours http_proxy; its listener is reached only so", async () => {
    const { out, err, code, egress } = await run(`wget -q -O- http://allowed.test:${allowed.port}/`);
    expect(out).toBe(`hello allowed.test:${allowed.port}\n`);
    expect(code).toBe(0);
    expect(err).toBe(`spool egress: allowed: allowed.test:${allowed.port}\n`);
    expect(egress).toEqual({ allowed: [`allowed.test:${allowed.port}`], blocked: [] });
  });

  it("a raw TCP client (busybox nc) reaches an allowed host through the forwarder on 127.0.0.1 with a CONNECT of its own", async () => {
    const before = raw.connections;
    // busybox nc quits at the end of its input: the input stays open until the answer came (a FIFO the reader writes).
    const { out, code } = await run(
      [
        "mkfifo /tmp/answered",
        `{ printf 'CONNECT raw.test:${raw.port} HTTP/1.1\\r\\n\\r\\nping\\n'; read -r _ < /tmp/answered; } | nc 127.0.0.1 3128 |`,
        '  { while IFS= read -r line; do echo "$line"; case "$line" in raw:*) echo > /tmp/answered; break;; esac; done; } | tr -d "\\r"',
      ].join("\n"),
    );
    expect(out).toBe("HTTP/1.1 200 Connection Established\n\nraw: ping\n");
    expect(code).toBe(0);
    expect(raw.connections).toBe(before + 1);
  });

  it("the unlisted host fails: 403 through the proxy, nothing without it, and its listener sees no connection", async () => {
    const { out, err, egress } = await run(
      [
        `wget -q -O- http://evil.test:${unlisted.port}/ 2>&1; echo "proxied: $?"`,
        `printf 'CONNECT evil.test:${unlisted.port} HTTP/1.1\\r\\n\\r\\n' | nc 127.0.0.1 3128 | head -1 | tr -d '\\r'`,
        // Without the proxy: the container's own loopback, where nothing listens; no resolver answers.
        `(unset http_proxy HTTP_PROXY; wget -q -O- http://127.0.0.3:${unlisted.port}/ 2>&1; echo "direct: $?")`,
        `nslookup evil.test >/dev/null 2>&1; echo "dns: $?"`,
      ].join("; "),
    );
    expect(out).toContain("403 Forbidden");
    expect(out).toContain("proxied: 1\n");
    expect(out).toContain("HTTP/1.1 403 Forbidden\n");
    expect(out).toMatch(/Connection refused\ndirect: 1\n/);
    expect(out).toContain("dns: 1\n");
    expect(err).toContain(`spool egress: blocked: evil.test:${unlisted.port} (not on the list)\n`);
    expect(egress?.blocked).toEqual([`evil.test:${unlisted.port}`]);
    expect(unlisted.connections).toBe(0);
  });

  it("an IP literal of a listed name's address is refused; the runner's loopback is not the container's", async () => {
    const host = await rawListener("127.0.0.1");
    try {
      const { out } = await run(
        [
          `wget -q -O- http://127.0.0.2:${allowed.port}/ 2>&1; echo "literal: $?"`,
          `(unset http_proxy HTTP_PROXY; wget -q -O- http://127.0.0.1:${host.port}/ 2>&1; echo "direct: $?")`,
        ].join("; "),
      );
      expect(out).toMatch(/403 Forbidden\nliteral: 1\n/);
      expect(out).toMatch(/Connection refused\ndirect: 1\n/);
      expect(host.connections).toBe(0);
    } finally {
      await host.close();
    }
  });

  /**
   * A busybox script that sends `bytes` (a printf format) to the forwarder's `port` and prints everything the proxy answers
   * in hex; the input stays open until the answer ended (busybox nc quits at the end of its input).
   */
  const exchange = (port: number, bytes: string) =>
    [
      "rm -f /tmp/answered; mkfifo /tmp/answered",
      `{ printf '${bytes}'; read -r _ < /tmp/answered; } | nc 127.0.0.1 ${port} | { od -An -tx1 -v | tr -d ' \\n'; echo; echo > /tmp/answered; }`,
    ].join("\n");
  const hex = (text: string) => Buffer.from(text, "latin1").toString("hex");

  it("a SOCKS5 name with a NUL byte is refused before any rule is matched; the host before the NUL is not reached", async () => {
    // A host the proxy takes for one on the internet when this machine has one; else a loopback address listed with another port.
    const outside = outsideAddress();
    const target = await httpListener(outside ?? "127.0.0.6");
    try {
      const name = `${outside ?? "127.0.0.6"}\u0000.allowed.test`;
      const { out, err, egress } = await run(exchange(1080, printfBytes(socksConnect(name, target.port))), [
        "*.allowed.test",
        ...(outside ? [] : [`127.0.0.6:${target.port + 1}`]),
      ]);
      // The method reply, then 2: "connection not allowed by ruleset".
      expect(out).toBe("050005020001000000000000\n");
      expect(err).toContain(`spool egress: blocked: ${outside ?? "127.0.0.6"}\\x00.allowed.test:${target.port} (not a host name: it holds a NUL byte)`);
      expect(egress?.blocked).toEqual([`${outside ?? "127.0.0.6"}\\x00.allowed.test:${target.port}`]);
      expect(target.connections).toBe(0);
    } finally {
      await target.close();
    }
  });

  it("a plain request whose Host header names another site is refused; its own goes through", async () => {
    const before = allowed.received;
    const { out, err } = await run(
      [
        `wget -q -O- --header 'Host: evil.test' http://allowed.test:${allowed.port}/ 2>&1; echo "other host: $?"`,
        `wget -q -O- http://allowed.test:${allowed.port}/own`,
      ].join("; "),
    );
    expect(out).toContain("403 Forbidden");
    expect(out).toContain(`other host: 1\nhello allowed.test:${allowed.port}\n`);
    expect(err).toContain(`spool egress: blocked: evil.test:${allowed.port} (named by the Host header of a request to allowed.test:${allowed.port})`);
    expect(allowed.received - before).toBe(1);
  });

  it("a TLS ClientHello naming another host than the tunnel's is refused with an alert, and reaches nothing; its own name goes through", async () => {
    const before = raw.received;
    const connect = `CONNECT raw.test:${raw.port} HTTP/1.1\\r\\n\\r\\n`;
    const established = hex("HTTP/1.1 200 Connection Established\r\n\r\n");
    const other = await run(exchange(3128, `${connect}${printfBytes(clientHelloFor("evil.test"))}`));
    // TLS alert 112, unrecognized_name (fatal).
    expect(other.out).toBe(`${established}15030300020270\n`);
    expect(other.err).toContain(`spool egress: blocked: evil.test:${raw.port} (named by the TLS ClientHello of a tunnel opened to raw.test:${raw.port}`);
    expect(raw.received).toBe(before);
    const own = await run(exchange(3128, `${connect}${printfBytes(clientHelloFor("raw.test"))}`));
    expect(own.out.startsWith(`${established}${hex("raw: ")}`)).toBe(true);
    expect(raw.received).toBeGreaterThan(before);
  });

  it("a service on the runner's loopback that the list names by address and port answers at that address in the container", async () => {
    const service = await httpListener("127.0.0.1");
    try {
      const { out, egress } = await run(
        [`wget -q -O- http://127.0.0.1:${service.port}/`, `(unset http_proxy HTTP_PROXY; wget -q -O- http://127.0.0.1:${service.port}/direct)`].join("; "),
        [`127.0.0.1:${service.port}`],
      );
      expect(out).toBe(`hello 127.0.0.1:${service.port}\n`.repeat(2));
      expect(egress?.allowed).toEqual([`127.0.0.1:${service.port}`]);
      expect(service.received).toBe(2);
    } finally {
      await service.close();
    }
  });

  it("without nsenter the runner does not offer the mode, says why, and refuses such a command before any container is made", async () => {
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent";
    const without = new DockerBackend({ image: infra.dockerImage! });
    try {
      const sandbox = await without.sandbox();
      expect(sandbox.egress).toBeUndefined();
      expect(sandbox.detail).toContain("no network allowlist (nsenter (util-linux) is not on PATH)");
      const before = allowed.connections;
      await expect(
        without.start({
          command: "wget -q -O- http://allowed.test/",
          env: {},
          sandbox: { mode: "workspace-write", egress: { allow: ["allowed.test"] } },
          signal: new AbortController().signal,
        }),
      ).rejects.toThrow("network mode allowlist is not available on the docker runner: nsenter (util-linux) is not on PATH");
      expect(allowed.connections).toBe(before);
    } finally {
      process.env.PATH = path;
      await without.close();
    }
  });

  it("the same backend in a running container (exec) refuses an allowlist before anything runs", async () => {
    const exec = new DockerBackend({ container: "spool-no-such-container" });
    try {
      await expect(
        exec.start({
          command: "echo x",
          env: {},
          sandbox: { mode: "workspace-write", egress: { allow: ["allowed.test"] } },
          signal: new AbortController().signal,
        }),
      ).rejects.toThrow("network mode allowlist is not available on the docker runner: commands exec in container spool-no-such-container");
    } finally {
      await exec.close();
    }
  });
});
