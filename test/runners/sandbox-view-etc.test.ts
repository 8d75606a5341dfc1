import { chmodSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalBackend } from "../../src/runners/local/local.js";
import { copiedSource, copyOf } from "../../src/runners/sandbox/etc-view.js";
import type { ExecSandbox } from "../../src/runners/sandbox/sandbox.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { eventually } from "../helpers/server.js";
import { MODES, output, probe, split, viewSpec } from "../helpers/view-probe.js";

/**
 * Issue 73: a root runner's command reads the root-only files of what is bound as it is (owner read needs no
 * capability), so /etc and /usr/local/etc (where locally installed software keeps its configuration and keys) are
 * copies of what every user of the machine may read, kept in step with the machine's. Real bubblewrap, as root.
 */

describeWithBwrap("/etc as every user of the machine may read it: no root-only file, even for a root runner", () => {
  let dir: string;
  let workspace: string;
  let backend: LocalBackend;
  beforeAll(async () => {
    workspace = realpathSync(mkdtempSync("/var/tmp/spool-view-etc-"));
    backend = new LocalBackend();
    // A command first, as a runner that ran commands before: its probe, its records and its copy of /etc are made,
    // and the directory below comes in by the copy's watch — which the next start must have read.
    await run("true", "workspace-write");
    // A service's directory in /etc, as root: a key only root may read, a setting everyone may.
    dir = mkdtempSync("/etc/spool-view-test-");
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "service.key"), "etc-secret-73\n", { mode: 0o600 });
    writeFileSync(join(dir, "service.conf"), "setting=public\n", { mode: 0o644 });
  });
  afterAll(async () => {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(workspace, { recursive: true, force: true });
  });

  const run = async (command: string, mode: ExecSandbox["mode"], onOut?: (out: string) => void) =>
    (await output(backend, viewSpec(command, workspace, mode), onOut)).out;

  for (const [mode] of MODES) {
    it(`${mode}: the root-only key and the machine's own (shadow, SSH host keys) are not there; what others may read is`, async () => {
      const secrets = ["/etc/shadow", "/etc/gshadow", join(dir, "service.key"), "/etc/ssh/ssh_host_ed25519_key"];
      const out = await run(
        `cat ${join(dir, "service.conf")}; for f in ${secrets.join(" ")}; do [ -e "$f" ] && echo "there $f"; done; cat /etc/passwd | head -1`,
        mode,
      );
      expect(process.getuid?.()).toBe(0);
      const lines = out.split("\n");
      expect(lines[0], out).toBe("setting=public");
      expect(out).not.toContain("there ");
      // And /etc's public files are there: the accounts, as any user reads them.
      expect(lines[1], out).toMatch(/^root:x:0:0:/);
    });
  }

  it("a file made private while a command runs leaves its view at once; one made readable comes in", async () => {
    const conf = join(dir, "service.conf");
    const later = join(dir, "later.conf");
    const go = join(workspace, "go");
    let seen = () => false;
    const waiting = new Promise<void>((resolve) => {
      seen = () => {
        resolve();
        return true;
      };
    });
    const ran = run(
      `cat ${conf}; echo waiting; while [ ! -e ${go} ]; do sleep 0.05; done; cat ${conf} 2>/dev/null || echo gone; cat ${later} 2>/dev/null || echo absent`,
      "workspace-write",
      (out) => (out.includes("waiting") ? seen() : false),
    );
    await waiting;
    chmodSync(conf, 0o600);
    writeFileSync(later, "added\n", { mode: 0o644 });
    // The copy follows /etc on its own (inotify), not only at a start: wait for it, then let the command look.
    const copy = copyOf("/etc")!;
    await eventually(() => !existsSync(join(copy, conf.slice(4))) && existsSync(join(copy, later.slice(4))), 10_000, "the copy of /etc to follow");
    writeFileSync(go, "");
    expect(await ran).toBe("setting=public\nwaiting\ngone\nadded\n");
  });
});

describeWithBwrap("/usr/local/etc as every user may read it, as /etc: a locally installed program's key, even for a root runner", () => {
  const LOCAL_ETC = "/usr/local/etc";
  let made = false;
  let dir: string;
  let top: string;
  let later: string;
  let workspace: string;
  let backend: LocalBackend;
  beforeAll(async () => {
    // A machine without it gets one for the test (and it goes after): the runner looks at every start.
    made = !existsSync(LOCAL_ETC);
    if (made) mkdirSync(LOCAL_ETC, { mode: 0o755 });
    workspace = realpathSync(mkdtempSync("/var/tmp/spool-view-usr-local-"));
    backend = new LocalBackend();
    // A command first, as a runner that ran commands before: what is written below comes after its start.
    await run("true", "workspace-write");
    // A locally installed service's configuration, as root: its directory with a key only root may read and a setting
    // everyone may, and a key beside it at the top.
    dir = mkdtempSync(join(LOCAL_ETC, "spool-view-test-"));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "service.key"), "usr-local-secret-73\n", { mode: 0o600 });
    writeFileSync(join(dir, "service.conf"), "setting=public\n", { mode: 0o644 });
    top = `${dir}.key`;
    writeFileSync(top, "usr-local-top-secret-73\n", { mode: 0o600 });
    later = `${dir}.conf`;
  });
  afterAll(async () => {
    await backend?.close();
    for (const path of [dir, top, later]) if (path) rmSync(path, { recursive: true, force: true });
    if (made) rmSync(LOCAL_ETC, { recursive: true, force: true });
    rmSync(workspace, { recursive: true, force: true });
  });

  const run = async (command: string, mode: ExecSandbox["mode"]) => (await output(backend, viewSpec(command, workspace, mode))).out;

  for (const [mode] of MODES) {
    it(`${mode}: the root-only keys are not there, what others may read is; the mount table names the copy as /etc's, nothing else`, async () => {
      expect(process.getuid?.()).toBe(0);
      const out = await run(`cat ${join(dir, "service.conf")}; ${probe([join(dir, "service.key"), top])}`, mode);
      const { seen, mountinfo } = split(out);
      expect(seen.split("\n")[0], out).toBe("setting=public");
      expect(out).not.toContain("secret-73");
      expect(seen).not.toContain("read ");
      // Bound as /etc's copy is: a directory of the copy's own in memory, named by the system path alone.
      const mount = (at: string) =>
        mountinfo
          .split("\n")
          .find((line) => line.split(" ")[4] === at)
          ?.split(" ")[3];
      const etc = mount("/etc");
      expect(etc, mountinfo).toMatch(/^\/spool-etc-\d+-\w+\/etc$/);
      expect(mount(LOCAL_ETC), mountinfo).toBe(`${etc!.slice(0, -"/etc".length)}${LOCAL_ETC}`);
      expect(mountinfo).not.toContain(dir);
    });
  }

  it("a file made private after the runner started is gone from the next command's view; a new one others may read is there", async () => {
    const conf = join(dir, "service.conf");
    expect(await run(`cat ${conf}`, "read-only")).toBe("setting=public\n");
    chmodSync(conf, 0o600);
    writeFileSync(later, "added\n", { mode: 0o644 });
    for (const [mode] of MODES) expect(await run(`cat ${conf} 2>/dev/null || echo gone; cat ${later} 2>/dev/null || echo absent`, mode)).toBe("gone\nadded\n");
  });
});

describe("where /usr/local/etc's copy is made: where its files are, when the sandbox would show them as they are", () => {
  it("a directory in /usr, or a link leading to one: its real path; a link into /etc or out of the system directories, or nothing: none", () => {
    const dir = mkdtempSync("/usr/local/spool-view-source-");
    try {
      const real = join(dir, "real");
      mkdirSync(real);
      const links = { toReal: real, toEtc: "/etc", toVar: "/var/tmp", toMissing: join(dir, "missing") };
      for (const [name, target] of Object.entries(links)) symlinkSync(target, join(dir, name));
      expect(copiedSource(real)).toBe(real);
      expect(copiedSource(join(dir, "toReal"))).toBe(real);
      // /etc's copy has its files; /var/tmp is not in a sandbox's view; nothing is nothing to copy.
      expect(copiedSource(join(dir, "toEtc"))).toBeNull();
      expect(copiedSource(join(dir, "toVar"))).toBeNull();
      expect(copiedSource(join(dir, "toMissing"))).toBeNull();
      expect(copiedSource(join(dir, "absent"))).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
