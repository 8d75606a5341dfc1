import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { ExecSpec } from "../../src/runners/backend.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { infraRequired } from "../helpers/infra.js";
import { httpListener, type Listener, outsideAddress, rawListener, tlsListener } from "../helpers/listeners.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { printfBytes, socksConnect } from "../helpers/socks.js";

/**
 * What the egress proxy checks (SPEC §7 Runners, "What the egress proxy checks"), on the local bubblewrap runner over
 * real processes: a name is checked before it is matched (a SOCKS5 name with a NUL byte), what reaches the host is what
 * was allowed (a plain request's Host header, a TLS ClientHello's server name), and a service on the host's loopback
 * that the list names is reached at the address written. Each listener counts what reached it.
 */

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

describeWithBwrap("what the egress proxy checks, on the local bubblewrap runner", () => {
  let root: string;
  let allowed: Listener;
  let evil: Listener;
  let tls: Listener | null;
  let backend: LocalBackend;
  beforeAll(async () => {
    root = realpathSync(mkdtempSync("/var/tmp/spool-egress-checks-"));
    allowed = await httpListener("127.0.0.2");
    evil = await httpListener("127.0.0.3");
    tls = await tlsListener("127.0.0.5", "allowed.test");
    backend = new LocalBackend({
      egressHosts: { "allowed.test": "127.0.0.2", "evil.test": "127.0.0.3", "api.allowed.test": "127.0.0.5", "other.test": "127.0.0.5" },
      killGraceMs: 500,
    });
  });
  afterAll(async () => {
    await Promise.all([allowed?.close(), evil?.close(), tls?.close()]);
    await backend?.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function run(command: string, allow: string[]) {
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
    return { out, err, code: result.exitCode, egress: result.egress };
  }

  /** A shell script that sends `bytes` to the forwarder's SOCKS5 port and prints the proxy's answer in hex. */
  const socksScript = (bytes: Buffer) =>
    [
      "exec 3<>/dev/tcp/127.0.0.1/1080",
      `printf '${printfBytes(bytes)}' >&3`,
      "head -c 12 <&3 | od -An -tx1 -v | tr -s ' \\n' ' ' | sed 's/^ *//; s/ *$//'; echo",
    ].join("\n");

  it("a SOCKS5 name with a NUL byte is refused before any rule is matched, and the host before the NUL is not reached", async () => {
    // A host the proxy takes for one on the internet when this machine has one (what the lookup would reach once it
    // stopped at the NUL); else a loopback address the list names with another port.
    const outside = outsideAddress();
    const target = await httpListener(outside ?? "127.0.0.6");
    try {
      writeFileSync(join(root, "socks.sh"), socksScript(socksConnect(`${outside ?? "127.0.0.6"}\u0000.allowed.test`, target.port)));
      const { out, err, egress } = await run("bash ./socks.sh", ["*.allowed.test", ...(outside ? [] : [`127.0.0.6:${target.port + 1}`])]);
      // The method reply, then reply 2: "connection not allowed by ruleset".
      expect(out).toBe("05 00 05 02 00 01 00 00 00 00 00 00\n");
      expect(err).toContain(`spool egress: blocked: ${outside ?? "127.0.0.6"}\\x00.allowed.test:${target.port} (not a host name: it holds a NUL byte)`);
      expect(egress?.blocked).toEqual([`${outside ?? "127.0.0.6"}\\x00.allowed.test:${target.port}`]);
      expect(target.connections).toBe(0);
    } finally {
      await target.close();
    }
  });

  it("a NUL byte in a CONNECT or a plain request's line or Host header: 400, saying the request cannot be read, and nothing is reached", async () => {
    const request = (line: string) => `printf '${line}\\r\\n\\r\\n' | curl -sS --max-time 5 telnet://127.0.0.1:3128 2>/dev/null | tr -d '\\r'; echo; echo ==`;
    const before = { evil: evil.connections, allowed: allowed.connections };
    const { out } = await run(
      [
        request(`CONNECT evil.test\\000.allowed.test:${evil.port} HTTP/1.1`),
        request(`CONNECT allowed.test:${allowed.port}\\000:${evil.port} HTTP/1.1`),
        request(`GET http://allowed.test:${allowed.port}/ HTTP/1.1\\r\\nHost: allowed.test\\000evil.test:${evil.port}`),
      ].join("; "),
      ["allowed.test"],
    );
    const answers = out.split("\n==\n").filter((a) => a.trim());
    expect(answers).toHaveLength(3);
    for (const answer of answers) {
      expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\n/);
      expect(answer).toMatch(/spool egress proxy: not an HTTP request it can read \(HPE_[A-Z_]+\): nothing was passed on\n*$/);
    }
    expect(evil.connections).toBe(before.evil);
    expect(allowed.connections).toBe(before.allowed);
  });

  it("names with a percent sign, a space or a non-ASCII letter are refused through CONNECT, plain requests and SOCKS5, each saying why", async () => {
    const request = (line: string) => `printf '${line}\\r\\n\\r\\n' | curl -sS --max-time 5 telnet://127.0.0.1:3128 2>/dev/null | head -1 | tr -d '\\r'`;
    writeFileSync(join(root, "space.sh"), socksScript(socksConnect("evil.test .allowed.test", evil.port)));
    writeFileSync(join(root, "idn.sh"), socksScript(socksConnect(Buffer.from("év.allowed.test").toString("latin1"), evil.port)));
    const { out, err } = await run(
      [
        request(`CONNECT evil.test%%2f.allowed.test:${evil.port} HTTP/1.1`),
        request(`GET http://evil.test%%2f.allowed.test:${evil.port}/ HTTP/1.1\\r\\nHost: evil.test%%2f.allowed.test:${evil.port}`),
        "bash ./space.sh",
        "bash ./idn.sh",
      ].join("; "),
      ["*.allowed.test"],
    );
    expect(out).toBe(`HTTP/1.1 403 Forbidden\nHTTP/1.1 403 Forbidden\n${"05 00 05 02 00 01 00 00 00 00 00 00\n".repeat(2)}`);
    expect(err).toContain(`spool egress: blocked: evil.test%2f.allowed.test:${evil.port} (not a host name: it holds a percent sign)`);
    expect(err).toContain(`spool egress: blocked: evil.test\\x20.allowed.test:${evil.port} (not a host name: it holds a space)`);
    expect(err).toContain(
      `spool egress: blocked: \\xc3\\xa9v.allowed.test:${evil.port} (not a host name: it is not ASCII (an internationalized name goes in its punycode form, xn--…))`,
    );
    expect(err).not.toContain("allowed:");
    expect(evil.connections).toBe(0);
  });

  it("a plain request whose Host header names another site is refused, with an absolute URL and in a CONNECT tunnel; its own Host goes through", async () => {
    const before = { connections: allowed.connections, received: allowed.received };
    const { out, err } = await run(
      [
        `curl -sS -o /dev/null -w '%{http_code}\\n' -H 'Host: evil.test' http://allowed.test:${allowed.port}/`,
        `curl -sS -o /dev/null -w '%{http_code}\\n' -p -H 'Host: evil.test:${allowed.port}' http://allowed.test:${allowed.port}/`,
        `curl -sS -p http://allowed.test:${allowed.port}/own`,
      ].join("; "),
      ["allowed.test"],
    );
    expect(out).toBe(`403\n403\nhello allowed.test:${allowed.port}\n`);
    expect(err).toContain(`spool egress: blocked: evil.test:${allowed.port} (named by the Host header of a request to allowed.test:${allowed.port})`);
    expect(err).toContain(
      `spool egress: blocked: evil.test:${allowed.port} (named by the Host header of a request to allowed.test:${allowed.port} in a tunnel`,
    );
    // Only the request with its own Host reached the host (the tunnels' connections opened, and carried nothing else).
    expect(allowed.received - before.received).toBe(1);
    expect(evil.connections).toBe(0);
  });

  it("a TLS ClientHello naming another host than the tunnel's is refused (CONNECT and SOCKS5); the tunnel's own name goes through", async (ctx) => {
    if (!tls) {
      if (infraRequired) throw new Error("SPOOL_TEST_INFRA=required but the openssl command, which makes the TLS server's certificate, is missing");
      return ctx.skip("the openssl command, which makes the TLS server's certificate, is missing");
    }
    const port = tls.port;
    const { out, err, egress } = await run(
      [
        `curl -sS -k https://api.allowed.test:${port}/`,
        `curl -sS -k --socks5-hostname 127.0.0.1:1080 https://api.allowed.test:${port}/`,
        `openssl s_client -proxy 127.0.0.1:3128 -connect api.allowed.test:${port} -servername other.test </dev/null >/dev/null 2>&1; echo "other name: $?"`,
        `openssl s_client -proxy 127.0.0.1:3128 -connect api.allowed.test:${port} -noservername </dev/null >/dev/null 2>&1; echo "no name: $?"`,
        `curl -sS -k --socks5-hostname 127.0.0.1:1080 --connect-to other.test:${port}:api.allowed.test:${port} https://other.test:${port}/ 2>/dev/null; echo "socks other name: $?"`,
      ].join("; "),
      ["*.allowed.test"],
    );
    expect(out).toBe(`hello tls api.allowed.test\nhello tls api.allowed.test\nother name: 1\nno name: 1\nsocks other name: 35\n`);
    expect(err).toContain(`spool egress: blocked: other.test:${port} (named by the TLS ClientHello of a tunnel opened to api.allowed.test:${port}`);
    expect(err).toContain(`spool egress: blocked: api.allowed.test:${port} (its TLS ClientHello names no server (SNI)`);
    expect(egress?.blocked).toEqual(expect.arrayContaining([`other.test:${port}`]));
    // Only the two handshakes that named the tunnel's host reached it.
    expect(tls.received).toBe(2);
  });

  /**
   * A shell script that opens a tunnel to `target` (CONNECT on the forwarder's HTTP port), sends `payload` (a printf
   * format) through it and prints the first line of what comes back and any `hello` line, or `(nothing)`.
   */
  const tunnelScript = (target: string, payload: string) =>
    [
      "exec 3<>/dev/tcp/127.0.0.1/3128",
      `printf 'CONNECT ${target} HTTP/1.1\\r\\n\\r\\n' >&3`,
      "while IFS= read -r line <&3 && [ \"$line\" != $'\\r' ]; do :; done",
      `printf '${payload}' >&3`,
      "answer=$(timeout 5 cat <&3 | tr -d '\\r' | grep -E '^(HTTP/|hello|raw:)' | tr '\\n' ' ')",
      'if [ -n "$answer" ]; then echo "$answer"; else echo "(nothing)"; fi',
    ].join("\n");

  it("a plain request in a tunnel is checked however it starts: a blank line before it, or a method the proxy does not know, does not carry another Host past the check", async () => {
    // A host that takes what many servers take: any token as the method (Go's net/http does) after blank lines (Node's and nginx's do), answering for the Host it was asked for.
    const lenient = createServer((socket) => {
      socket.setEncoding("latin1");
      let head = "";
      socket.on("data", (chunk: string) => {
        head += chunk;
        if (!head.includes("\r\n\r\n")) return;
        const [line = "", ...headers] = head.replace(/^[\r\n]+/, "").split("\r\n");
        const host =
          headers
            .find((h) => /^host:/i.test(h))
            ?.slice(5)
            .trim() ?? "";
        socket.end(`HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello ${host} (${line.split(" ")[0]})\n`);
      });
    });
    await new Promise<void>((done) => lenient.listen(0, "127.0.0.2", done));
    const port = (lenient.address() as AddressInfo).port;
    const before = allowed.received;
    try {
      const evilHost = "Host: evil.test\\r\\nConnection: close\\r\\n\\r\\n";
      const scripts = {
        crlf: tunnelScript(`allowed.test:${allowed.port}`, `\\r\\nGET / HTTP/1.1\\r\\n${evilHost}`),
        lf: tunnelScript(`allowed.test:${allowed.port}`, `\\nGET / HTTP/1.1\\r\\n${evilHost}`),
        foo: tunnelScript(`allowed.test:${port}`, `FOO / HTTP/1.1\\r\\n${evilHost}`),
        lower: tunnelScript(`allowed.test:${port}`, `get / HTTP/1.1\\r\\n${evilHost}`),
        own: tunnelScript(`allowed.test:${allowed.port}`, `\\r\\nGET /own HTTP/1.1\\r\\nHost: allowed.test:${allowed.port}\\r\\nConnection: close\\r\\n\\r\\n`),
      };
      for (const [name, script] of Object.entries(scripts)) writeFileSync(join(root, `${name}.sh`), script);
      const { out, err } = await run(
        Object.keys(scripts)
          .map((name) => `bash ./${name}.sh`)
          .join("; "),
        ["allowed.test"],
      );
      // None of them reached the host as a request for evil.test; each was refused or cut; the host's own request went through.
      expect(out).not.toContain("hello evil.test");
      expect(out.split("\n")).toEqual([
        "HTTP/1.1 403 Forbidden ",
        "HTTP/1.1 403 Forbidden ",
        expect.stringMatching(/^(HTTP\/1\.1 400 Bad Request |\(nothing\))$/),
        expect.stringMatching(/^(HTTP\/1\.1 400 Bad Request |\(nothing\))$/),
        `HTTP/1.1 200 OK hello allowed.test:${allowed.port} `,
        "",
      ]);
      expect(err).toContain(
        `spool egress: blocked: evil.test:${allowed.port} (named by the Host header of a request to allowed.test:${allowed.port} in a tunnel`,
      );
      expect(allowed.received - before).toBe(1);
    } finally {
      await new Promise<void>((done) => lenient.close(() => done()));
    }
  });

  it("text protocols that are not HTTP still pass a tunnel untouched: an SSH banner with a comment, a Redis inline command", async () => {
    const raw = await rawListener("127.0.0.4");
    try {
      const scripts = {
        banner: tunnelScript(`127.0.0.4:${raw.port}`, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\\r\\n"),
        redis: tunnelScript(`127.0.0.4:${raw.port}`, "SET key value\\r\\n"),
      };
      for (const [name, script] of Object.entries(scripts)) writeFileSync(join(root, `${name}.sh`), script);
      const { out } = await run("bash ./banner.sh; bash ./redis.sh", [`127.0.0.4:${raw.port}`]);
      expect(out).toBe("raw: SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3 \nraw: SET key value \n");
    } finally {
      await raw.close();
    }
  });

  it("a raw protocol through a tunnel passes untouched, and a host that speaks first is heard before the client says anything", async () => {
    // A service that greets first (as SSH, SMTP and FTP servers do), then echoes a line.
    const greeter = createServer((socket) => {
      socket.write("SSH-2.0-greeter\n");
      socket.setEncoding("utf8");
      socket.on("data", (line: string) => socket.end(`echo: ${line}`));
    });
    await new Promise<void>((done) => greeter.listen(0, "127.0.0.4", done));
    const port = (greeter.address() as AddressInfo).port;
    try {
      const script = [
        "exec 3<>/dev/tcp/127.0.0.1/3128",
        `printf 'CONNECT 127.0.0.4:${port} HTTP/1.1\\r\\n\\r\\n' >&3`,
        "while IFS= read -r line <&3 && [ \"$line\" != $'\\r' ]; do :; done",
        // Nothing is sent before the greeting is read: a proxy holding the host's bytes until the client's would hang here.
        'IFS= read -r greeting <&3; echo "$greeting"',
        "echo SSH-2.0-client >&3",
        "cat <&3",
      ].join("\n");
      writeFileSync(join(root, "greet.sh"), script);
      const { out } = await run("bash ./greet.sh", [`127.0.0.4:${port}`]);
      expect(out).toBe("SSH-2.0-greeter\necho: SSH-2.0-client\n");
    } finally {
      await new Promise<void>((done) => greeter.close(() => done()));
    }
  });

  it("a service on the host's loopback that the list names by address and port answers at that address, through the proxy", async () => {
    const service = await httpListener("127.0.0.1");
    const other = await httpListener("127.0.0.1");
    try {
      const { out, err, egress } = await run(
        [
          `curl -sS http://127.0.0.1:${service.port}/`,
          `NO_PROXY= no_proxy= curl -sS http://127.0.0.1:${service.port}/`,
          `env -u HTTP_PROXY -u http_proxy curl -sS http://127.0.0.1:${service.port}/`,
          `curl -sS --max-time 5 http://127.0.0.1:${other.port}/ 2>/dev/null; echo "unlisted: $?"`,
        ].join("; "),
        [`127.0.0.1:${service.port}`],
      );
      expect(out).toBe(`hello 127.0.0.1:${service.port}\n`.repeat(3) + "unlisted: 7\n");
      expect(err).toContain(`spool egress: allowed: 127.0.0.1:${service.port}\n`);
      expect(egress?.allowed).toEqual([`127.0.0.1:${service.port}`]);
      expect(service.received).toBe(3);
      expect(other.connections).toBe(0);
    } finally {
      await Promise.all([service.close(), other.close()]);
    }
  });
});
