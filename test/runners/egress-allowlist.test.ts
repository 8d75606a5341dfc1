import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { ExecSpec } from "../../src/runners/backend.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { httpListener, type Listener, rawListener } from "../helpers/listeners.js";
import { describeWithBwrap } from "../helpers/sandbox.js";

/**
 * Network mode `allowlist` on the local bubblewrap runner (SPEC §7 Runners, "Sandbox modes"), over real processes: the
 * command has a loopback of its own and the egress proxy outside as its one way out. Test hosts are names the proxy's
 * resolver maps to loopback addresses (`egressHosts`), the only targets here; each listener counts its connections, so
 * "nothing reached it" is seen, not assumed.
 */

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

describeWithBwrap("network mode allowlist on the local bubblewrap runner", () => {
  let root: string;
  let allowed: Listener;
  let unlisted: Listener;
  let raw: Listener;
  let backend: LocalBackend;
  beforeAll(async () => {
    root = realpathSync(mkdtempSync("/var/tmp/spool-egress-"));
    // Three loopback addresses, so a connection a listener sees can only have been meant for it.
    allowed = await httpListener("127.0.0.2");
    unlisted = await httpListener("127.0.0.3");
    raw = await rawListener("127.0.0.4");
    backend = new LocalBackend({
      egressHosts: { "allowed.test": "127.0.0.2", "evil.test": "127.0.0.3", "raw.test": "127.0.0.4" },
      killGraceMs: 500,
    });
  });
  afterAll(async () => {
    await Promise.all([allowed?.close(), unlisted?.close(), raw?.close()]);
    await backend?.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** Runs `command` in workspace-write with `allow` as the list; its output, stderr and exit code. */
  async function run(command: string, allow: string[] = ["allowed.test", "raw.test"]) {
    const spec: ExecSpec = {
      command,
      cwd: root,
      workspace: root,
      env: {},
      sandbox: { mode: "workspace-write", egress: { allow } },
      timeoutMs: 30_000,
      signal: new AbortController().signal,
    };
    const execution = await backend.start(spec);
    const [out, err, result] = await Promise.all([text(execution.stdout), text(execution.stderr), execution.result]);
    return { out, err, code: result.exitCode };
  }

  it("an allowed host answers through curl that honours the proxy variables, plain and through a CONNECT tunnel", async () => {
    const { out, err, code } = await run(`curl -sS http://allowed.test:${allowed.port}/ && curl -sS -p http://allowed.test:${allowed.port}/tunnel`);
    expect(out).toBe(`hello allowed.test:${allowed.port}\nhello allowed.test:${allowed.port}\n`);
    expect(code).toBe(0);
    // Told once on the side channel, however often it was reached.
    expect(err).toBe(`spool egress: allowed: allowed.test:${allowed.port}\n`);
  });

  it("a tool that ignores the proxy variables finds the proxy on 127.0.0.1 (HTTP and SOCKS5), and nothing without it", async () => {
    const bare = "env -u HTTP_PROXY -u http_proxy -u HTTPS_PROXY -u https_proxy -u ALL_PROXY -u all_proxy";
    const { out } = await run(
      [
        `${bare} curl -sS --proxy http://127.0.0.1:3128 http://allowed.test:${allowed.port}/http`,
        `${bare} curl -sS --socks5-hostname 127.0.0.1:1080 http://allowed.test:${allowed.port}/socks`,
        `${bare} curl -sS --max-time 5 http://allowed.test:${allowed.port}/ 2>/dev/null; echo "by name: $?"`,
        `${bare} curl -sS --max-time 5 http://127.0.0.2:${allowed.port}/ 2>/dev/null; echo "by address: $?"`,
      ].join("; "),
    );
    // 6: the name does not resolve inside; 7: the host's loopback is not the sandbox's.
    expect(out).toBe(`hello allowed.test:${allowed.port}\nhello allowed.test:${allowed.port}\nby name: 6\nby address: 7\n`);
    expect(allowed.connections).toBe(4);
  });

  it("a raw TCP client reaches an allowed host through the forwarder with a CONNECT of its own", async () => {
    const script = [
      "exec 3<>/dev/tcp/127.0.0.1/3128",
      `printf 'CONNECT raw.test:${raw.port} HTTP/1.1\\r\\nHost: raw.test:${raw.port}\\r\\n\\r\\n' >&3`,
      "IFS= read -r status <&3; echo \"$status\" | tr -d '\\r'",
      "while IFS= read -r line <&3 && [ \"$line\" != $'\\r' ]; do :; done",
      "echo ping >&3",
      "cat <&3",
    ].join("\n");
    writeFileSync(join(root, "raw.sh"), script);
    const { out, code } = await run("bash ./raw.sh");
    expect(out).toBe("HTTP/1.1 200 Connection Established\nraw: ping\n");
    expect(code).toBe(0);
    expect(raw.connections).toBe(1);
  });

  it("a host not on the list gets 403 from the proxy, naming it, and its listener sees no connection", async () => {
    const { out, err, code } = await run(
      [
        `curl -sS -i http://evil.test:${unlisted.port}/`,
        `echo; curl -sS -p http://evil.test:${unlisted.port}/ 2>&1; echo "tunnel: $?"`,
        `curl -sS --socks5-hostname 127.0.0.1:1080 http://evil.test:${unlisted.port}/ 2>/dev/null; echo "socks: $?"`,
      ].join("; "),
    );
    expect(out, `stderr: ${err} (exit ${code})`).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(out).toContain("x-proxy-error: blocked-by-allowlist\r\n");
    expect(out).toContain(`evil.test:${unlisted.port} is blocked by the allowlist: not on the list (the list: allowed.test, raw.test)`);
    expect(out).toContain("CONNECT tunnel failed, response 403");
    // 97: the SOCKS5 proxy refused the connection (2: not allowed by its rules).
    expect(out).toContain("socks: 97\n");
    expect(err).toContain(`spool egress: blocked: evil.test:${unlisted.port} (not on the list)\n`);
    expect(unlisted.connections).toBe(0);
  });

  it("an IP literal of a listed name's address, a private address and the host's loopback are refused; so is a listed name that resolves inside", async () => {
    const { out, err } = await run(
      [
        `curl -sS -o /dev/null -w '%{http_code}\\n' http://127.0.0.2:${allowed.port}/`,
        "curl -sS -o /dev/null -w '%{http_code}\\n' http://10.1.2.3/",
        // NO_PROXY names the sandbox's own loopback; emptied, curl asks the proxy for these as well.
        "NO_PROXY= no_proxy= curl -sS -o /dev/null -w '%{http_code}\\n' http://[::1]:80/",
        `NO_PROXY= no_proxy= curl -sS -o /dev/null -w '%{http_code}\\n' http://localhost:${allowed.port}/`,
      ].join("; "),
      ["allowed.test", "localhost"],
    );
    expect(out).toBe("403\n403\n403\n403\n");
    expect(err).toContain(`blocked: 127.0.0.2:${allowed.port} (not on the list)`);
    expect(err).toContain("blocked: 10.1.2.3:80 (not on the list)");
    expect(err).toContain(`blocked: localhost:${allowed.port} (it resolves to`);
    expect(err).toContain("an internal address the list does not name)");
  });

  it("a port on the host's loopback (the server's) stays unreachable, directly and through the proxy", async () => {
    const server = await rawListener("127.0.0.1");
    try {
      const { out } = await run(
        [
          `curl -sS --max-time 5 http://127.0.0.1:${server.port}/ 2>/dev/null; echo "direct: $?"`,
          `NO_PROXY= no_proxy= curl -sS -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:${server.port}/`,
          `NO_PROXY= no_proxy= curl -sS -o /dev/null -w '%{http_code}\\n' http://localhost:${server.port}/`,
        ].join("; "),
        ["allowed.test", "localhost"],
      );
      expect(out).toBe("direct: 7\n403\n403\n");
      expect(server.connections).toBe(0);
    } finally {
      await server.close();
    }
  });

  it("DNS of a name not on the list resolves nothing inside, and the proxy does not look it up for the command", async () => {
    const { out } = await run('getent hosts example.org; echo "getent: $?"; getent hosts evil.test; echo "getent: $?"');
    expect(out).toBe("getent: 2\ngetent: 2\n");
  });

  it("an address the list names is reached by that address", async () => {
    const { out } = await run(`curl -sS http://127.0.0.2:${allowed.port}/`, [`127.0.0.2:${allowed.port}`]);
    expect(out).toBe(`hello 127.0.0.2:${allowed.port}\n`);
  });
});
