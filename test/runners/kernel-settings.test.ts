import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Backend, ExecSpec } from "../../src/runners/backend.js";
import { DockerBackend } from "../../src/runners/docker/docker.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { bwrapCommand } from "../../src/runners/sandbox/sandbox.js";
import { SshBackend } from "../../src/runners/ssh/ssh.js";
import { describeWithInfra, infra, sshHostKeys, sshKey } from "../helpers/infra.js";
import { describeWithBwrap } from "../helpers/sandbox.js";

/**
 * Issue 45, point 1: a sandboxed command writes no kernel setting, whatever user the runner is. Run as root (as CI
 * and most containers run), a read-only command once wrote /proc/sys/kernel/core_pattern, and the kernel ran the
 * program it named as the host's root. Real bubblewrap, the local and SSH backends themselves.
 *
 * The writes are of the value each setting already has (read, then written back): never another value, this machine
 * is shared. /proc/sysrq-trigger is only asked whether it is writable (`test -w`), never written.
 */

const SETTINGS = ["/proc/sys/kernel/core_pattern", "/proc/sys/vm/overcommit_memory"];

/** What a command learns of its rights over the kernel, one `name value` line each. */
const PROBE = [
  `for f in ${SETTINGS.join(" ")}; do v=$(cat "$f") || continue; if (printf '%s\\n' "$v" > "$f") 2>/dev/null; then echo "$f written"; else echo "$f refused"; fi; done`,
  "if [ ! -e /proc/sysrq-trigger ]; then echo 'sysrq absent'; elif [ -w /proc/sysrq-trigger ]; then echo 'sysrq writable'; else echo 'sysrq refused'; fi",
  // The options of the mount /proc/sys is on: the last line is the one on top.
  `echo "mount $(grep ' /proc/sys ' /proc/self/mountinfo | tail -n 1 | cut -d ' ' -f 6 | cut -d , -f 1)"`,
  "grep -E '^Cap(Prm|Eff):' /proc/self/status | tr -d '\\t' | tr ':' ' '",
  'echo "uid $(id -u)"',
  'echo "userns $(readlink /proc/self/ns/user)"',
  "echo \"seccomp $(grep '^Seccomp:' /proc/self/status | tr -d '\t' | cut -d : -f 2)\"",
].join("\n");

/**
 * Calls the seccomp filter refuses, made from python3: keyctl (the kernel's keyrings, which no namespace separates)
 * reads the session keyring's id, and TIOCSTI (pushing input into a terminal) is asked of /dev/null; then keyctl by
 * the i386 ABI (`int 0x80`, its own number 288) and getpid by it (allowed), and getpid by the x32 ABI (refused whole).
 * Without the filter keyctl answers, TIOCSTI says ENOTTY, x32 answers or is ENOSYS; with it, EPERM. The i386 calls are
 * made in a child process: on a kernel without ia32 emulation `int 0x80` faults (SIGSEGV), said as `absent`.
 */
const SYSCALLS = `python3 -c '
import ctypes, errno, fcntl, mmap, os
libc = ctypes.CDLL(None, use_errno=True)
def said(r, e):
    return "EPERM" if r == -1 and e == errno.EPERM else "answered" if r >= 0 else errno.errorcode.get(e, str(e))
r = libc.syscall(250, 0, -3, 0)
print("keyctl", said(r, ctypes.get_errno()))
try:
    fcntl.ioctl(os.open("/dev/null", os.O_RDONLY), 0x5412, b"x")
    print("tiocsti answered")
except OSError as e:
    print("tiocsti", errno.errorcode[e.errno])
def i386(code):
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        m.write(bytes(code))
        r = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))()
        os.write(wr, said(-1 if r < 0 else r, -r).encode())
        os._exit(0)
    os.close(wr)
    status = os.waitpid(pid, 0)[1]
    out = os.read(rd, 64).decode()
    return out if os.WIFEXITED(status) and out else "absent"
# push rbx; mov eax, 288; mov ebx, 0; mov ecx, -3; mov edx, 0; int 0x80; pop rbx; ret
print("i386-keyctl", i386([0x53, 0xB8, 0x20, 0x01, 0, 0, 0xBB, 0, 0, 0, 0, 0xB9, 0xFD, 0xFF, 0xFF, 0xFF, 0xBA, 0, 0, 0, 0, 0xCD, 0x80, 0x5B, 0xC3]))
# mov eax, 20; int 0x80; ret
print("i386-getpid", i386([0xB8, 0x14, 0, 0, 0, 0xCD, 0x80, 0xC3]))
r = libc.syscall(0x40000000 | 39)
print("x32-getpid", said(r, ctypes.get_errno()))
'`;
const python = spawnSync("python3", ["-c", "pass"]).status === 0;
/** What SYSCALLS gives outside any sandbox here (the i386 ABI may be off, keyrings missing). */
const bare: Record<string, string> = python ? parse(spawnSync("/bin/sh", ["-c", SYSCALLS], { encoding: "utf8" }).stdout) : {};
/** What the filter makes of SYSCALLS: getpid by the i386 ABI as it is outside, the rest refused. */
const FILTERED = {
  keyctl: "EPERM",
  tiocsti: "EPERM",
  // A kernel without the i386 ABI (no ia32 emulation: `int 0x80` faults, SIGSEGV) has none to filter.
  "i386-keyctl": bare["i386-keyctl"] === "absent" ? "absent" : "EPERM",
  "i386-getpid": bare["i386-getpid"],
  "x32-getpid": "EPERM",
};
const x64 = process.arch === "x64";

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
  const result = await execution.result;
  if (result.exitCode !== 0) throw new Error(`the probe ended ${result.exitCode ?? result.signal}: ${err}`);
  return parse(out);
}

/** Whether bubblewrap can make a user namespace here (then a sandboxed command's root must be root of its own one). */
const usernsHere = spawnSync("bwrap", bwrapCommand("/", "true", true)).status === 0;
const hostUserns = readlinkSync("/proc/self/ns/user");
const ownCaps = parse(
  readFileSync("/proc/self/status", "utf8")
    .split("\n")
    .filter((line) => /^Cap(Prm|Eff):/.test(line))
    .map((line) => line.replace(/:\s*/, " "))
    .join("\n"),
);

function expectHeld(facts: Record<string, string>, login: "root" | "another user"): void {
  for (const setting of SETTINGS) expect(facts[setting]).toBe("refused");
  expect(["refused", "absent"]).toContain(facts.sysrq);
  expect(facts.mount).toBe("ro");
  expect(facts.CapEff).toBe("0000000000000000");
  expect(facts.CapPrm).toBe("0000000000000000");
  if (login === "root") expect(facts.uid).toBe("0");
  if (usernsHere) expect(facts.userns).not.toBe(hostUserns);
  if (x64) expect(facts.seccomp).toBe("2");
}

describeWithBwrap("a sandboxed command writes no kernel setting, even when the runner is root (issue 45)", () => {
  let workspace: string;
  let backend: LocalBackend;
  const asRoot = process.getuid?.() === 0;
  beforeAll(() => {
    workspace = realpathSync(mkdtempSync("/var/tmp/spool-kernel-"));
    backend = new LocalBackend();
  });
  afterAll(async () => {
    await backend.close();
    rmSync(workspace, { recursive: true, force: true });
  });

  for (const mode of ["read-only", "workspace-write"] as const) {
    it(`${mode}: /proc/sys and /proc/sysrq-trigger are read-only, no capabilities, and its root is not the host's where user namespaces exist`, async () => {
      if (!asRoot) console.warn("not root: the writes are refused by file modes already; the mounts and capabilities are still checked");
      const facts = await run(backend, { command: PROBE, cwd: workspace, workspace, sandbox: { mode } });
      expectHeld(facts, asRoot ? "root" : "another user");
    });
  }

  for (const mode of ["read-only", "workspace-write"] as const) {
    it.skipIf(!x64 || !python)(
      `${mode}: the seccomp filter refuses keyctl, TIOCSTI, the i386 ABI's keyctl and the x32 ABI with EPERM (x86-64, python3)`,
      async () => {
        const facts = await run(backend, { command: SYSCALLS, cwd: workspace, workspace, sandbox: { mode } });
        expect(facts).toEqual(FILTERED);
      },
    );
  }

  it("the runner says so: the user namespace, the kernel's settings and the seccomp filter are in the sandbox's detail", async () => {
    const { detail } = await backend.sandbox();
    expect(detail).toContain("/proc/sys read-only");
    expect(detail).toContain(usernsHere ? "a user namespace of its own" : "no user namespace here");
    expect(detail).toContain(x64 ? "a seccomp filter (" : "no seccomp filter (");
  });

  it("workspace-write still writes the project as before: new files are the runner's user's, others' files writable as their modes say", async () => {
    writeFileSync(join(workspace, "shared.txt"), "before\n");
    chmodSync(join(workspace, "shared.txt"), 0o666);
    // A file of another user (nobody), writable by others: written through its mode, as before.
    if (asRoot) spawnSync("chown", ["65534:65534", join(workspace, "shared.txt")]);
    const execution = await backend.start({
      command: "echo made > made.txt && echo after >> shared.txt && mkdir -p sub && echo deep > sub/deep.txt && echo done",
      cwd: workspace,
      workspace,
      env: {},
      sandbox: { mode: "workspace-write" },
      signal: new AbortController().signal,
    });
    execution.stderr.resume();
    let out = "";
    execution.stdout.on("data", (data: Buffer) => {
      out += data.toString();
    });
    expect((await execution.result).exitCode).toBe(0);
    expect(out).toBe("done\n");
    for (const file of ["made.txt", "sub", join("sub", "deep.txt")]) {
      const stat = statSync(join(workspace, file));
      expect([stat.uid, stat.gid]).toEqual([process.getuid?.(), process.getgid?.()]);
    }
    expect(readFileSync(join(workspace, "shared.txt"), "utf8")).toBe("before\nafter\n");
    if (asRoot) expect(statSync(join(workspace, "shared.txt")).uid).toBe(65534);
  });

  it("full is unchanged: the runner's own capabilities, no seccomp filter, the kernel's settings as the runner's user has them (nothing is written)", async () => {
    const execution = await backend.start({
      command: `grep -E '^Cap(Prm|Eff):' /proc/self/status | tr -d '\\t' | tr ':' ' '; [ -w /proc/sys/vm/overcommit_memory ] && echo 'settings writable' || echo 'settings refused'\n${python ? SYSCALLS : ""}`,
      cwd: workspace,
      workspace,
      env: {},
      signal: new AbortController().signal,
    });
    execution.stderr.resume();
    let out = "";
    execution.stdout.on("data", (data: Buffer) => {
      out += data.toString();
    });
    await execution.result;
    const facts = parse(out);
    expect(facts.CapEff).toBe(ownCaps.CapEff);
    expect(facts.settings).toBe(asRoot ? "writable" : "refused");
    if (python) expect(facts).toMatchObject({ ...bare, tiocsti: "ENOTTY" });
    if (python) expect(bare["i386-keyctl"]).not.toBe("EPERM");
  });
});

// The SSH host is this machine (scripts/test-infra.sh), with its bubblewrap; the login is another user of it.
describeWithBwrap("over SSH: a sandboxed command writes no kernel setting (issue 45)", () =>
  describeWithInfra("ssh", "bubblewrap on the remote host", () => {
    let backend: SshBackend;
    let workspace: string;
    beforeAll(() => {
      backend = new SshBackend({ host: infra.ssh!.host, port: infra.ssh!.port, username: infra.ssh!.username, privateKey: sshKey(), hostKeys: sshHostKeys() });
      workspace = mkdtempSync("/var/tmp/spool-ssh-kernel-");
      chmodSync(workspace, 0o777);
    });
    afterAll(async () => {
      await backend.close();
      rmSync(workspace, { recursive: true, force: true });
    });

    for (const mode of ["read-only", "workspace-write"] as const) {
      it(`${mode}: /proc/sys read-only, no capabilities, a user namespace of its own where bwrap makes one there`, async () => {
        const facts = await run(backend, { command: PROBE, cwd: workspace, workspace, sandbox: { mode } });
        expectHeld(facts, infra.ssh!.username === "root" ? "root" : "another user");
      });
    }

    it.skipIf(!x64 || !python)("workspace-write: the seccomp filter refuses keyctl and TIOCSTI with EPERM there too", async () => {
      const facts = await run(backend, { command: SYSCALLS, cwd: workspace, workspace, sandbox: { mode: "workspace-write" } });
      expect(facts).toEqual(FILTERED);
    });

    it("the runner says so in its detail", async () => {
      const { detail } = await backend.sandbox();
      expect(detail).toContain("/proc/sys read-only");
      expect(detail).toContain(usernsHere ? "a user namespace of its own" : "no user namespace here");
      expect(detail).toContain(x64 ? "a seccomp filter (" : "no seccomp filter (");
    });
  }),
);

// Docker's own: ReadonlyPaths (/proc/sys and the rest) and CapDrop ALL for the sandboxed modes; its defaults in full.
describeWithInfra("docker", "on Docker: a container's command writes no kernel setting either (issue 45)", () => {
  let backend: DockerBackend;
  beforeAll(() => {
    backend = new DockerBackend({ image: infra.dockerImage! });
  });
  afterAll(() => backend.close());

  for (const mode of ["read-only", "workspace-write", "full"] as const) {
    it(`${mode}: /proc/sys read-only${mode === "full" ? " (Docker's default)" : ", no capabilities"}`, async () => {
      const facts = await run(backend, mode === "full" ? { command: PROBE } : { command: PROBE, sandbox: { mode } });
      for (const setting of SETTINGS) expect(facts[setting]).toBe("refused");
      expect(["refused", "absent"]).toContain(facts.sysrq);
      expect(facts.mount).toBe("ro");
      if (mode !== "full") expect([facts.CapEff, facts.CapPrm]).toEqual(["0000000000000000", "0000000000000000"]);
    });
  }
});
