import { afterAll, beforeAll, expect, it } from "vitest";
import type { ExecSpec } from "../../src/runners/backend.js";
import { DockerBackend } from "../../src/runners/docker.js";
import { describeWithInfra, infra } from "../helpers/infra.js";
import { httpListener, type Listener, rawListener } from "../helpers/listeners.js";

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
