import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { describe, it } from "vitest";
import type { RemoteShell } from "../../src/runners/ssh/ssh.js";

/** The sshd and Docker engine that scripts/test-infra.sh starts (and .ci/run exports). */
export const infra = {
  ssh: process.env.SPOOL_TEST_SSH_HOST
    ? {
        host: process.env.SPOOL_TEST_SSH_HOST,
        port: Number(process.env.SPOOL_TEST_SSH_PORT ?? 22),
        username: process.env.SPOOL_TEST_SSH_USER ?? "spoolrunner",
        keyFile: process.env.SPOOL_TEST_SSH_KEY ?? "",
        hostKeyFile: process.env.SPOOL_TEST_SSH_HOST_KEY ?? "",
      }
    : null,
  dockerImage: process.env.SPOOL_TEST_DOCKER_IMAGE ?? null,
  /** A PostgreSQL server the tests may create databases in (scripts/test-postgres.sh). */
  postgresUrl: process.env.SPOOL_TEST_POSTGRES_URL ?? null,
};

export const infraRequired = process.env.SPOOL_TEST_INFRA === "required";

/**
 * The environment of a process that reaches the npm registry: NODE_EXTRA_CA_CERTS as the suite was started with it
 * (vitest.config.ts keeps it from every other process the tests start, which reach loopback alone).
 */
export function registryEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const extra = process.env.SPOOL_TEST_NODE_EXTRA_CA_CERTS;
  return extra ? { ...env, NODE_EXTRA_CA_CERTS: extra } : env;
}

/**
 * What a skip says to do: the tests find sshd, Docker and PostgreSQL through the SPOOL_TEST_* variables that
 * scripts/test-infra.sh up prints (it starts them, as root), so running them is not enough; the variables must be
 * in the environment of `npm test` (README.md "Tests").
 */
export const INFRA_HINT = 'start them and export what they print: set -a; eval "$(bash scripts/test-infra.sh up)"; set +a';

/** Why a test that needs `variable` skips: it is not set, and how to set it. */
export const unset = (variable: string) => `${variable} is not set (${INFRA_HINT})`;

function sshMissing(): string | null {
  if (!infra.ssh) return unset("SPOOL_TEST_SSH_HOST");
  if (!existsSync(infra.ssh.keyFile)) return `SSH key ${infra.ssh.keyFile} is missing`;
  if (!existsSync(infra.ssh.hostKeyFile)) return `SSH host key ${infra.ssh.hostKeyFile} is missing (SPOOL_TEST_SSH_HOST_KEY)`;
  return null;
}

/**
 * A describe block that needs sshd or Docker: it skips with the reason printed
 * when they are missing, and fails instead when SPOOL_TEST_INFRA=required.
 */
export function describeWithInfra(kind: "ssh" | "docker" | "postgres" | "local", name: string, body: () => void): void {
  if (kind === "local") {
    describe(name, body);
    return;
  }
  const missing =
    kind === "ssh"
      ? sshMissing()
      : kind === "postgres"
        ? infra.postgresUrl
          ? null
          : unset("SPOOL_TEST_POSTGRES_URL")
        : infra.dockerImage
          ? null
          : unset("SPOOL_TEST_DOCKER_IMAGE");
  if (missing && infraRequired) {
    describe(name, () =>
      it(`needs ${kind}`, () => {
        throw new Error(`SPOOL_TEST_INFRA=required but ${kind} is missing: ${missing}`);
      }),
    );
    return;
  }
  if (missing) {
    console.warn(`skipping "${name}": ${missing}`);
    describe.skip(name, body);
    return;
  }
  describe(name, body);
}

export function sshKey(): Buffer {
  return readFileSync(infra.ssh!.keyFile);
}

export function sshHostKeys(): string[] {
  return readFileSync(infra.ssh!.hostKeyFile, "utf8")
    .split("\n")
    .filter((l) => l.trim());
}

/**
 * A project directory for an SSH runner's --root: one the login (another user of this machine) may write, outside /tmp
 * (which a sandbox has its own of); removed when the test process ends. Without --root the workspace would be the
 * login's home, where workspace-write is refused (SPEC §7 "Sandbox modes").
 */
export function sshRoot(): string {
  const dir = mkdtempSync("/var/tmp/spool-ssh-root-");
  chmodSync(dir, 0o777);
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `spool runner` flags for an SSH runner on the test sshd, its project at `root` (default a fresh `sshRoot()`). */
export function sshRunnerFlags(root: string = sshRoot()): string[] {
  const ssh = infra.ssh!;
  return [
    "--root",
    root,
    "--backend",
    "ssh",
    "--ssh-host",
    ssh.host,
    "--ssh-port",
    String(ssh.port),
    "--ssh-user",
    ssh.username,
    "--ssh-key",
    ssh.keyFile,
    "--ssh-host-key",
    ssh.hostKeyFile,
  ];
}

let rawShell: RemoteShell | null = null;

/**
 * Runs `command` on the test sshd as its login runs it, outside any container the SSH backend would give it (a
 * full command has a PID namespace of its own there, where `kill -0` of another pid sees nothing); its exit code.
 */
export async function sshOutside(command: string): Promise<number | null> {
  // Imported here: the SSH backend (ssh2 and the sandbox's schemas) is not what most files importing infra need.
  const { ssh2Shell } = await import("../../src/runners/ssh/ssh.js");
  rawShell ??= ssh2Shell({ host: infra.ssh!.host, port: infra.ssh!.port, username: infra.ssh!.username, privateKey: sshKey(), hostKeys: sshHostKeys() });
  const channel = await rawShell.exec(command);
  channel.stdin.end();
  channel.stdout.resume();
  channel.stderr.resume();
  return (await channel.closed).exitCode;
}

/** Closes sshOutside's connection. */
export function closeSshOutside(): void {
  rawShell?.close();
  rawShell = null;
}
