import { spawnSync } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Backend, ExecSpec } from "../../src/runners/backend.js";
import { DockerBackend } from "../../src/runners/docker/docker.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { describeWithInfra, infra } from "../helpers/infra.js";
import { describeWithBwrap } from "../helpers/sandbox.js";

/**
 * Issue 54, points 4 and 7: a sandboxed command leaves no setuid or setgid file on the host (as root, a setuid-root
 * one), and io_uring, whose operations no seccomp filter judges, is refused; read-only commands create no Unix socket.
 * Real bubblewrap and the local backend; the files are looked at from the host afterwards.
 */

const x64 = process.arch === "x64";
const python = spawnSync("python3", ["-c", "pass"]).status === 0;

/** Each way of setting the bits, one `name result` line: the file's mode as the command sees it afterwards, or the error. */
const PLANT = `cp /bin/sh planted-chmod; chmod 4755 planted-chmod 2>/dev/null && echo "chmod set" || echo "chmod refused"
cp /bin/sh planted-sgid; chmod g+s planted-sgid 2>/dev/null && echo "chmod-sgid set" || echo "chmod-sgid refused"
install -m 4755 /bin/sh planted-install 2>/dev/null && echo "install set" || echo "install refused"
python3 -c '
import ctypes, errno, os
try:
    os.close(os.open("planted-open", os.O_CREAT | os.O_WRONLY, 0o4755)); print("open set")
except OSError as e:
    print("open", errno.errorcode[e.errno])
try:
    fd = os.open("planted-fchmod", os.O_CREAT | os.O_WRONLY, 0o755); os.fchmod(fd, 0o6755); print("fchmod set")
except OSError as e:
    print("fchmod", errno.errorcode[e.errno])
os.close(os.open("plain", os.O_CREAT | os.O_WRONLY, 0o644)); print("plain created")
os.chmod("plain", 0o755); print("plain chmod")
'
echo "mount $(grep " $PWD " /proc/self/mountinfo | tail -n 1 | cut -d ' ' -f 6)"
echo "uid $(id -u)"`;

/** io_uring's three calls and the sockets a command may create, one `name result` line each. */
const KERNEL = `python3 -c '
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
r = libc.syscall(425, 8, params)
print("io_uring_setup", "answered" if r >= 0 else errno.errorcode[ctypes.get_errno()])
print("io_uring_enter", errno.errorcode[ctypes.get_errno()] if libc.syscall(426, -1, 0, 0, 0, None, 0) < 0 else "answered")
print("io_uring_register", errno.errorcode[ctypes.get_errno()] if libc.syscall(427, -1, 0, None, 0) < 0 else "answered")
import socket
try:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close(); print("unix-socket answered")
except OSError as e:
    print("unix-socket", errno.errorcode[e.errno])
a, b = socket.socketpair(); a.close(); b.close(); print("socketpair answered")
socket.socket(socket.AF_INET, socket.SOCK_STREAM).close(); print("inet-socket answered")
'`;

function parse(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .trim()
      .split("\n")
      .map((line) => [line.slice(0, line.indexOf(" ")), line.slice(line.indexOf(" ") + 1)]),
  );
}

async function run(backend: Backend, spec: Omit<ExecSpec, "env" | "signal">): Promise<Record<string, string>> {
  const execution = await backend.start({ ...spec, env: {}, signal: new AbortController().signal });
  let out = "";
  let err = "";
  execution.stdout.on("data", (data: Buffer) => {
    out += data.toString();
  });
  execution.stderr.on("data", (data: Buffer) => {
    err += data.toString();
  });
  const { exitCode } = await execution.result;
  // Nothing at all on stdout: the sandbox did not start the script (say why), not an answer of the script's.
  if (!out) throw new Error(`the command printed nothing (exit ${exitCode}); its stderr: ${err}`);
  return parse(out);
}

describeWithBwrap("a sandboxed command leaves no setuid file and has no io_uring (issue 54)", () => {
  let dir: string;
  let backend: LocalBackend;
  beforeAll(() => {
    dir = realpathSync(mkdtempSync("/var/tmp/spool-setuid-"));
    backend = new LocalBackend();
  });
  afterAll(async () => {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!x64 || !python)(
    "workspace-write, as the runner's user (root here): no way of setting the setuid or setgid bit leaves it on the host",
    async () => {
      const workspace = mkdtempSync(join(dir, "ww-"));
      const facts = await run(backend, { command: PLANT, cwd: workspace, workspace, sandbox: { mode: "workspace-write", network: false } });
      expect(facts).toMatchObject({
        chmod: "refused",
        "chmod-sgid": "refused",
        install: "refused",
        open: "EPERM",
        fchmod: "EPERM",
        plain: "chmod",
      });
      // The project's bind is nosuid and nodev besides (what is there cannot be run setuid inside).
      expect(facts.mount?.split(",")).toEqual(expect.arrayContaining(["nosuid", "nodev"]));
      // Looked at from the host: whatever exists of the planted files has neither bit.
      for (const name of ["planted-chmod", "planted-sgid", "planted-install", "planted-open", "planted-fchmod", "plain"]) {
        const stat = statSync(join(workspace, name), { throwIfNoEntry: false });
        if (stat) expect({ name, bits: stat.mode & 0o6000 }).toEqual({ name, bits: 0 });
      }
      expect(statSync(join(workspace, "plain")).mode & 0o777).toBe(0o755);
      if (process.getuid?.() === 0) expect(facts.uid).toBe("0");
    },
  );

  for (const mode of ["read-only", "workspace-write"] as const) {
    it.skipIf(!x64 || !python)(`${mode}: io_uring_setup, io_uring_enter and io_uring_register are EPERM`, async () => {
      const workspace = mkdtempSync(join(dir, "io-"));
      const facts = await run(backend, {
        command: KERNEL,
        cwd: workspace,
        workspace,
        sandbox: { mode, network: false },
      });
      expect(facts).toMatchObject({ io_uring_setup: "EPERM", io_uring_enter: "EPERM", io_uring_register: "EPERM" });
      // read-only creates no Unix socket (one it can see would accept it); workspace-write may; socketpair and INET always.
      expect(facts["unix-socket"]).toBe(mode === "read-only" ? "EPERM" : "answered");
      expect(facts).toMatchObject({ socketpair: "answered", "inet-socket": "answered" });
    });
  }

  it.skipIf(!x64 || !python)("outside a sandbox the same script sets the bits (the test can fail)", () => {
    const workspace = mkdtempSync(join(dir, "bare-"));
    const out = spawnSync("/bin/sh", ["-c", PLANT], { cwd: workspace, encoding: "utf8" }).stdout;
    expect(parse(out)).toMatchObject({ chmod: "set", open: "set", fchmod: "set" });
    expect(statSync(join(workspace, "planted-chmod")).mode & 0o4000).toBe(0o4000);
  });
});

// Docker: the container's root is the host's root (no user remapping here), so only the seccomp profile stands between
// a workspace-write command and a setuid-root file in the project (seccomp-docker.ts).
describeWithInfra("docker", "on Docker: a container's command leaves no setuid file in the project either (issue 54)", () => {
  let dir: string;
  let backend: DockerBackend;
  beforeAll(() => {
    dir = realpathSync(mkdtempSync("/var/tmp/spool-setuid-docker-"));
    backend = new DockerBackend({ image: infra.dockerImage!, mountProject: true });
  });
  afterAll(async () => {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const PLANT_BUSYBOX = `cp /bin/busybox planted; chmod 4755 planted 2>/dev/null && echo "chmod set" || echo "chmod refused"
cp /bin/busybox planted-sgid; chmod 2755 planted-sgid 2>/dev/null && echo "sgid set" || echo "sgid refused"
cp /bin/busybox plain; chmod 700 plain && echo "plain chmod"
unshare -U true 2>/dev/null && echo "unshare answered" || echo "unshare refused"
echo "uid $(id -u)"`;

  it("workspace-write: chmod 4755 and 2755 are refused, the host's file has neither bit, a plain chmod works", async () => {
    const root = mkdtempSync(join(dir, "ww-"));
    const facts = await run(backend, { command: PLANT_BUSYBOX, cwd: root, project: { root, cwd: "" }, sandbox: { mode: "workspace-write" } });
    expect(facts).toMatchObject({ chmod: "refused", sgid: "refused", plain: "chmod", unshare: "refused", uid: "0" });
    for (const name of ["planted", "planted-sgid"]) expect({ name, bits: statSync(join(root, name)).mode & 0o6000 }).toEqual({ name, bits: 0 });
  });

  // The image has no python: a static probe built here makes the three calls (skipped without a C compiler).
  const cc = spawnSync("cc", ["--version"]).status === 0;
  const PROBE_C = `#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
static void say(const char *name, long r) { if (r >= 0) printf("%s answered\\n", name); else printf("%s %s\\n", name, errno == EPERM ? "EPERM" : errno == ENOSYS ? "ENOSYS" : "other"); }
int main(void) { char params[120] = {0}; errno = 0; say("io_uring_setup", syscall(425, 8, params)); errno = 0; say("io_uring_enter", syscall(426, -1, 0, 0, 0, 0, 0)); errno = 0; say("io_uring_register", syscall(427, -1, 0, 0, 0));
  /* The kernel reads an int argument's low 32 bits: AF_UNIX and TIOCSTI with a high bit set are the same calls. */
  errno = 0; say("unix-socket", syscall(SYS_socket, 1L, 1L, 0L)); errno = 0; say("unix-socket-high", syscall(SYS_socket, 0x100000001L, 1L, 0L));
  char c = 'x'; errno = 0; long r = syscall(SYS_ioctl, 0L, 0x100005412L, &c); printf("tiocsti-high %s\\n", r >= 0 ? "answered" : errno == EPERM ? "EPERM" : "not-refused"); return 0; }
`;

  for (const mode of ["read-only", "workspace-write"] as const) {
    it.skipIf(!x64 || !cc)(
      `${mode}: io_uring_setup, io_uring_enter and io_uring_register are EPERM in the container, as root; so are TIOCSTI and (read-only) an AF_UNIX socket with high bits in the argument`,
      async () => {
        const root = mkdtempSync(join(dir, "io-"));
        writeFileSync(join(root, "probe.c"), PROBE_C);
        const built = spawnSync("cc", ["-static", "-O0", "-o", join(root, "probe"), join(root, "probe.c")], { encoding: "utf8" });
        expect(built.status, built.stderr).toBe(0);
        // The probe itself answers outside any sandbox (so the test can fail): the host's kernel has io_uring.
        expect(parse(spawnSync(join(root, "probe"), { encoding: "utf8" }).stdout)).toMatchObject({
          io_uring_setup: "answered",
          "unix-socket": "answered",
          "unix-socket-high": "answered",
          "tiocsti-high": "not-refused",
        });
        const facts = await run(backend, { command: "./probe; echo uid $(id -u)", cwd: root, project: { root, cwd: "" }, sandbox: { mode } });
        expect(facts).toMatchObject({ io_uring_setup: "EPERM", io_uring_enter: "EPERM", io_uring_register: "EPERM", uid: "0", "tiocsti-high": "EPERM" });
        const unix = mode === "read-only" ? "EPERM" : "answered";
        expect(facts).toMatchObject({ "unix-socket": unix, "unix-socket-high": unix });
      },
    );
  }

  it("full keeps Docker's default (the test can fail: there the bit is set)", async () => {
    const root = mkdtempSync(join(dir, "full-"));
    const facts = await run(backend, { command: PLANT_BUSYBOX, cwd: root, project: { root, cwd: "" } });
    expect(facts.chmod).toBe("set");
    expect(statSync(join(root, "planted")).mode & 0o4000).toBe(0o4000);
  });
});
