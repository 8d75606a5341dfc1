// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { ExecSpec } from "../../src/runners/backend.js";
import { DockerBackend } from "../../src/runners/docker/docker.js";
import { SshBackend } from "../../src/runners/ssh/ssh.js";
import { describeWithInfra, infra, infraRequired, sshHostKeys, sshKey, sshRoot } from "../helpers/infra.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { MODES, NO_VIEW, output, probe, refusal, split, viewSpec } from "../helpers/view-probe.js";

/**
 * Issue 73 over SSH and in Docker: what a sandboxed command sees there (sandbox-view.test.ts and sandbox-view-etc.test.ts have the local runner).
 * Real sshd, Docker and `spool` processes, as root.
 */

/** Whether the test sshd lets root log in with its key; under SPOOL_TEST_INFRA=required it must. */
async function rootAllowed(backend: SshBackend): Promise<boolean> {
  const allowed = await backend.check().then(
    () => true,
    () => false,
  );
  if (!allowed && infraRequired) throw new Error("SPOOL_TEST_INFRA=required but the test sshd does not let root log in with its key");
  return allowed;
}

describeWithBwrap("what a sandboxed command sees over SSH: nothing of the login's home (issue 73)", () =>
  describeWithInfra("ssh", "bubblewrap on the remote host", () => {
    let backend: SshBackend;
    let root: string;
    let remoteHome: string;
    const planted: string[] = [];
    /** Writes a file of the login's (in a directory of its), mode 0600, removed at the end. */
    let plant: (path: string, text: string) => void;
    beforeAll(() => {
      backend = new SshBackend({ host: infra.ssh!.host, port: infra.ssh!.port, username: infra.ssh!.username, privateKey: sshKey(), hostKeys: sshHostKeys() });
      root = sshRoot();
      remoteHome = join("/home", infra.ssh!.username);
      const uid = Number(readFileSync("/etc/passwd", "utf8").match(new RegExp(`^${infra.ssh!.username}:[^:]*:(\\d+)`, "m"))?.[1]);
      plant = (path: string, text: string) => {
        mkdirSync(join(path, ".."), { recursive: true });
        chownSync(join(path, ".."), uid, uid);
        writeFileSync(path, text, { mode: 0o600 });
        chownSync(path, uid, uid);
        planted.push(path);
      };
      plant(join(remoteHome, ".claude.json"), '{"mcpServers":{"spool":{"headers":{"Authorization":"Bearer remote-secret-73"}}}}');
      plant(join(remoteHome, ".pgpass"), "db:5432:*:app:remote-pgpass-73\n");
      plant(join(remoteHome, "agent.token"), "remote-token-73\n");
      plant(join(remoteHome, ".spool-view-test", "token"), "remote-home-token-73\n");
    });
    afterAll(async () => {
      await backend.close();
      for (const path of planted) rmSync(path, { force: true });
      rmSync(join(remoteHome, ".spool-view-test"), { recursive: true, force: true });
      for (const [mode] of MODES) {
        rmSync(join(remoteHome, `.spool-late-${mode}`), { recursive: true, force: true });
        rmSync(`/var/lib/spool-view-late-${mode}`, { recursive: true, force: true });
      }
    });

    for (const [mode] of MODES) {
      it(`${mode}: none of the login's secrets is readable; its home is private; the mount table names none`, async () => {
        const { out, result } = await output(backend, viewSpec(probe(planted), root, mode, NO_VIEW));
        expect(result.exitCode).toBe(0);
        const { seen, mountinfo } = split(out);
        for (const word of ["remote-secret-73", "remote-pgpass-73", "remote-token-73", "remote-home-token-73"]) expect(out).not.toContain(word);
        expect(seen).toBe("");
        for (const path of planted) expect(mountinfo).not.toContain(path);
        // And what it sees was found on the host: its system directories and its home.
        expect((await backend.sandbox()).view).toMatchObject({ system: expect.arrayContaining(["/usr", "/etc"]), home: remoteHome });
      });
    }

    for (const [mode] of MODES) {
      it(`${mode}: a Spool home the login starts while the command runs, in its home or under /var/lib, is not in view`, async () => {
        const go = `go-${mode}`;
        const late = [join(remoteHome, `.spool-late-${mode}`, "token"), join(`/var/lib/spool-view-late-${mode}`, "token")];
        let waiting: () => void;
        const waited = new Promise<void>((resolve) => (waiting = resolve));
        const ran = output(backend, viewSpec(`echo waiting; while [ ! -e ${go} ]; do sleep 0.05; done; ${probe(late)}`, root, mode, NO_VIEW), (out) => {
          if (out.startsWith("waiting\n")) waiting();
        });
        await Promise.race([waited, ran]);
        for (const path of late) plant(path, `late-home-${mode}-73\n`);
        writeFileSync(join(root, go), "");
        const { out, result } = await ran;
        expect(result.exitCode).toBe(0);
        const { seen, mountinfo } = split(out);
        expect(out).not.toContain(`late-home-${mode}-73`);
        expect(seen).toBe("waiting\n");
        for (const path of late) expect(mountinfo).not.toContain(join(path, ".."));
      });
    }
  }),
);

describeWithBwrap("configured paths over SSH as root: a system directory is refused, as on the local runner", () =>
  describeWithInfra("ssh", "bubblewrap on the remote host, a root login", () => {
    let backend: SshBackend;
    let root: string;
    beforeAll(() => {
      backend = new SshBackend({ host: infra.ssh!.host, port: infra.ssh!.port, username: "root", privateKey: sshKey(), hostKeys: sshHostKeys() });
      root = sshRoot();
    });
    afterAll(async () => {
      await backend.close();
    });

    for (const [mode] of MODES) {
      it(`${mode}: sandboxView.read naming /etc/ssh is refused, and the host's private keys are not read`, async (ctx) => {
        // A root login reads /etc's root-only files with no capability: it gets a copy of what others may read, and a
        // configured system directory bound as it is would undo that.
        if (!(await rootAllowed(backend))) return ctx.skip("the test sshd does not let root log in with its key");
        const { out, ran } = await refusal(backend, viewSpec("cat /etc/ssh/ssh_host_*_key", root, mode, { ...NO_VIEW, read: ["/etc/ssh"] }));
        expect(out).not.toContain("PRIVATE KEY");
        expect(ran).toContain("/etc/ssh is a system directory");
      });
    }
  }),
);

describeWithBwrap("/usr/local/etc over SSH as root: as every user may read it, as /etc", () =>
  describeWithInfra("ssh", "bubblewrap on the remote host, a root login", () => {
    const LOCAL_ETC = "/usr/local/etc";
    let backend: SshBackend;
    let root: string;
    let made = false;
    let dir: string;
    beforeAll(() => {
      backend = new SshBackend({ host: infra.ssh!.host, port: infra.ssh!.port, username: "root", privateKey: sshKey(), hostKeys: sshHostKeys() });
      root = sshRoot();
      // The host is this machine: a locally installed service's configuration there, a key only root may read.
      made = !existsSync(LOCAL_ETC);
      if (made) mkdirSync(LOCAL_ETC, { mode: 0o755 });
      dir = mkdtempSync(join(LOCAL_ETC, "spool-view-ssh-"));
      chmodSync(dir, 0o755);
      writeFileSync(join(dir, "service.key"), "ssh-usr-local-secret-73\n", { mode: 0o600 });
      writeFileSync(join(dir, "service.conf"), "setting=public\n", { mode: 0o644 });
    });
    afterAll(async () => {
      await backend?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
      if (made) rmSync(LOCAL_ETC, { recursive: true, force: true });
    });

    for (const [mode] of MODES) {
      it(`${mode}: the root-only key is not there, what others may read is`, async (ctx) => {
        if (!(await rootAllowed(backend))) return ctx.skip("the test sshd does not let root log in with its key");
        const { out, result } = await output(backend, viewSpec(`cat ${join(dir, "service.conf")}; ${probe([join(dir, "service.key")])}`, root, mode, NO_VIEW));
        expect(result.exitCode, out).toBe(0);
        const { seen, mountinfo } = split(out);
        expect(seen.split("\n")[0], out).toBe("setting=public");
        expect(out).not.toContain("ssh-usr-local-secret-73");
        expect(seen).not.toContain("read ");
        expect(mountinfo).not.toContain(dir);
      });
    }
  }),
);

describeWithInfra("docker", "what a sandboxed command sees in Docker: the image, the project and the configured paths (issue 73)", () => {
  let outside: string;
  let home: string;
  let root: string;
  let backend: DockerBackend;
  beforeAll(() => {
    outside = realpathSync(mkdtempSync("/var/tmp/spool-view-docker-"));
    home = join(outside, "home");
    root = join(outside, "project");
    mkdirSync(root, { recursive: true });
    mkdirSync(home);
    writeFileSync(join(home, ".gitconfig"), "[user]\n\tname = shown-73\n");
    writeFileSync(join(home, ".claude.json"), '{"token":"docker-secret-73"}');
    backend = new DockerBackend({ image: infra.dockerImage!, mountProject: true });
  });
  afterAll(async () => {
    await backend.close();
    rmSync(outside, { recursive: true, force: true });
  });

  const spec = (command: string, mode: "read-only" | "workspace-write", secrets: string[] = []): ExecSpec => ({
    command,
    cwd: root,
    project: { root, cwd: "" },
    env: {},
    sandbox: { mode, network: false, view: { toolchains: [], read: [join(home, ".gitconfig"), join(home, "missing")], write: [] }, secrets },
    signal: new AbortController().signal,
  });
  const run = async (request: ExecSpec) => (await output(backend, request)).out;

  for (const [mode] of MODES) {
    it(`${mode}: the configured file is there read-only, nothing else of the home; the mount table names no secret`, async () => {
      const out = await run(spec(`cat ${home}/.gitconfig; ${probe([join(home, ".claude.json")])}`, mode));
      const { seen, mountinfo } = split(out);
      expect(seen).toContain("name = shown-73");
      expect(out).not.toContain("docker-secret-73");
      expect(seen).not.toContain("read ");
      expect(mountinfo).not.toContain(".claude.json");
      expect(mountinfo).toContain(join(home, ".gitconfig"));
    });
  }

  it("configured paths are refused as on the local runner: a home or what holds one, a system directory (the machine's /etc/ssh), a writable one holding what a login runs", async () => {
    // The runner's home is where `~/` leads for it ($HOME): a known home, as the local runner's is.
    const saved = process.env.HOME;
    process.env.HOME = home;
    mkdirSync(join(home, ".config", "systemd", "user"), { recursive: true });
    try {
      const withView = (read: string[], write: string[]): ExecSpec => {
        const request = spec("cat /etc/ssh/ssh_host_*_key; ls -A ~ /home; touch ~/.config/systemd/user/planted.service", "workspace-write");
        return { ...request, sandbox: { ...request.sandbox!, view: { toolchains: [], read, write } } };
      };
      await expect(run(withView([home], []))).rejects.toThrow(`${home} is or holds the home directory ${home}`);
      await expect(run(withView([outside], []))).rejects.toThrow(`${outside} is or holds the home directory ${home}`);
      await expect(run(withView(["/home"], []))).rejects.toThrow("/home is or holds the home directory /home");
      await expect(run(withView(["/etc/ssh"], []))).rejects.toThrow("/etc/ssh is a system directory");
      await expect(run(withView([], [join(home, ".config")]))).rejects.toThrow(
        `${join(home, ".config")} is writable and holds ${join(home, ".config", "autostart")}, which a login runs or trusts outside the sandbox`,
      );
      expect(existsSync(join(home, ".config", "systemd", "user", "planted.service"))).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.HOME;
      else process.env.HOME = saved;
      rmSync(join(home, ".config"), { recursive: true, force: true });
    }
  });

  it("a Spool home inside the project is refused, naming it, where it was covered by an empty tmpfs before", async () => {
    const spoolHome = join(root, ".spool");
    mkdirSync(spoolHome);
    writeFileSync(join(spoolHome, "token"), "docker-home-73\n");
    try {
      for (const [mode] of MODES) {
        await expect(run(spec("cat .spool/token", mode, [spoolHome, join(spoolHome, "token")]))).rejects.toThrow(
          `the container's mounts would hold ${spoolHome} (through ${root})`,
        );
      }
    } finally {
      rmSync(spoolHome, { recursive: true, force: true });
    }
  });
});
