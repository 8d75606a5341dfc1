import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { ExecSpec } from "../../src/runners/backend.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import { toolchainRoots } from "../../src/runners/sandbox/view.js";
import { describeWithBwrap } from "../helpers/sandbox.js";

/**
 * The toolchains a sandboxed command's PATH names are in its view, read-only, and nothing beside them (SPEC §7 "What a
 * command sees"): the install roots of well-known layouts (rustup's beside ~/.cargo/bin, pyenv's, nvm's), a PATH
 * directory alone under a home (~/.local/bin, never ~/.local/share or ~/.local/state), an install prefix elsewhere
 * (/opt/tool/bin: /opt/tool). Then the work people run, measured on this machine's own toolchains (cargo and rustup,
 * pyenv's python, node and npm, git, make) in both modes, as docs/runners.md's table says. Real bubblewrap.
 */

async function run(
  backend: LocalBackend,
  command: string,
  mode: "read-only" | "workspace-write",
  workspace: string,
): Promise<{ code: number | null; out: string; err: string }> {
  const spec: ExecSpec = {
    command,
    cwd: workspace,
    workspace,
    env: {},
    sandbox: { mode, network: false },
    timeoutMs: 600_000,
    signal: new AbortController().signal,
  };
  const execution = await backend.start(spec);
  let out = "";
  let err = "";
  execution.stdout.on("data", (data: Buffer) => (out += data.toString()));
  execution.stderr.on("data", (data: Buffer) => {
    out += data.toString();
    err += data.toString();
  });
  const { exitCode } = await execution.result;
  return { code: exitCode, out, err };
}

describeWithBwrap("the toolchains PATH names, and nothing beside them", () => {
  let base: string;
  let home: string;
  let workspace: string;
  let backend: LocalBackend;
  const file = (path: string, text = "x\n") => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  };
  beforeAll(() => {
    base = realpathSync(mkdtempSync("/var/tmp/spool-toolchains-"));
    home = join(base, "home");
    workspace = join(base, "project");
    mkdirSync(workspace, { recursive: true });
    file(join(home, ".cargo", "bin", "cargo"));
    file(join(home, ".cargo", "credentials.toml"), 'token = "cargo-secret-73"\n');
    file(join(home, ".rustup", "settings.toml"));
    file(join(home, ".local", "bin", "tool"));
    file(join(home, ".local", "share", "app", "data"), "share-secret-73\n");
    file(join(home, ".local", "state", "spool", "state-paths", "x"));
    file(join(home, ".pyenv", "shims", "python"));
    file(join(home, ".pyenv", "versions", "3.12", "bin", "python3"));
    file(join(home, ".nvm", "versions", "node", "v22", "bin", "node"));
    file(join(home, ".nvm", "versions", "node", "v20", "bin", "node"));
    symlinkSync(join(home, ".nvm", "versions", "node", "v22"), join(home, ".nvm", "current"));
    file(join(base, "opt", "tool", "bin", "t"));
    file(join(base, "opt", "tool", "lib", "t.so"));
    file(join(base, "opt", "other", "secret"), "opt-secret-73\n");
    const path = [
      join(home, ".cargo", "bin"),
      join(home, ".local", "bin"),
      join(home, ".pyenv", "shims"),
      join(home, ".nvm", "current", "bin"),
      join(base, "opt", "tool", "bin"),
      // Neither a toolchain nor anything to bind: a home itself, a relative entry, one that is not there, the system's.
      home,
      "relative/bin",
      join(base, "missing", "bin"),
      "/usr/bin",
      "/bin",
    ].join(":");
    backend = new LocalBackend({ environ: { ...process.env, PATH: path, HOME: home } });
  });
  afterAll(async () => {
    await backend.close();
    rmSync(base, { recursive: true, force: true });
  });

  it("the roots are found by the rules and shown in the runner's view, in PATH's order", async () => {
    const view = (await backend.sandbox()).view!;
    expect(view.home).toBe(home);
    expect(view.toolchains.filter((root) => root.startsWith(base))).toEqual([
      join(home, ".cargo", "bin"),
      join(home, ".rustup"),
      join(home, ".local", "bin"),
      join(home, ".pyenv"),
      join(home, ".nvm", "versions", "node", "v22"),
      join(base, "opt", "tool"),
    ]);
  });

  for (const mode of ["read-only", "workspace-write"] as const) {
    it(`${mode}: each root is there read-only; its neighbours are not`, async () => {
      const seen = [".cargo/bin/cargo", ".rustup/settings.toml", ".local/bin/tool", ".pyenv/versions/3.12/bin/python3", ".nvm/versions/node/v22/bin/node"].map(
        (p) => join(home, p),
      );
      const unseen = [
        ".cargo/credentials.toml",
        ".local/share/app/data",
        ".local/state/spool/state-paths/x",
        ".nvm/versions/node/v20/bin/node",
        ".nvm/current",
      ].map((p) => join(home, p));
      const command = [
        `for f in ${seen.join(" ")} ${join(base, "opt", "tool", "lib", "t.so")}; do [ -f "$f" ] && echo "seen $f"; done`,
        `for f in ${unseen.join(" ")} ${join(base, "opt", "other", "secret")}; do [ -e "$f" ] && echo "UNSEEN-THERE $f"; done`,
        `{ echo x > ${join(home, ".cargo", "bin", "cargo")}; } 2>/dev/null && echo "toolchain written"`,
        "true",
      ].join("; ");
      const { code, out } = await run(backend, command, mode, workspace);
      expect(code).toBe(0);
      expect(out).not.toContain("UNSEEN-THERE");
      expect(out).not.toContain("toolchain written");
      expect(out).toBe(`${[...seen, join(base, "opt", "tool", "lib", "t.so")].map((f) => `seen ${f}`).join("\n")}\n`);
    });
  }

  it("the rules alone: a home's PATH entry stays alone, a prefix elsewhere is bound, / and top-level directories never", () => {
    const dirs = new Set(["/h", "/h/.local/bin", "/h/.cargo/bin", "/srv/x/bin", "/opt/bin", "/h/go/bin", "/snap/bin", "/"]);
    const machine = { realDir: (p: string) => (dirs.has(p) ? p : null), homes: ["/h", "/root", "/home"] };
    expect(toolchainRoots(["/h/.local/bin", "/h/.cargo/bin", "/srv/x/bin", "/opt/bin", "/h/go/bin", "/snap/bin", "/", "/h", "/usr/bin"], machine)).toEqual([
      "/h/.local/bin",
      "/h/.cargo/bin",
      "/srv/x",
      "/opt/bin",
      "/h/go/bin",
      "/snap/bin",
    ]);
  });
});

describeWithBwrap("common work in the sandbox, on this machine's toolchains (docs/runners.md's table)", () => {
  let workspace: string;
  let backend: LocalBackend;
  beforeAll(() => {
    workspace = realpathSync(mkdtempSync("/var/tmp/spool-work-"));
    chmodSync(workspace, 0o755);
    // A wheel pip installs offline (no index, no build backend needed): one module and its metadata.
    writeFileSync(
      join(workspace, "mkwheel.py"),
      [
        "import zipfile",
        "with zipfile.ZipFile('mypkg-0.1-py3-none-any.whl', 'w') as z:",
        "    z.writestr('mypkg/__init__.py', 'x = \"pip-ok\"\\n')",
        "    z.writestr('mypkg-0.1.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: mypkg\\nVersion: 0.1\\n')",
        "    z.writestr('mypkg-0.1.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')",
        "    z.writestr('mypkg-0.1.dist-info/RECORD', 'mypkg/__init__.py,,\\nmypkg-0.1.dist-info/METADATA,,\\nmypkg-0.1.dist-info/WHEEL,,\\nmypkg-0.1.dist-info/RECORD,,\\n')",
        "",
      ].join("\n"),
    );
    backend = new LocalBackend();
  });
  afterAll(async () => {
    await backend.close();
    rmSync(workspace, { recursive: true, force: true });
  });

  const has = (program: string) => (process.env.PATH ?? "").split(":").some((dir) => dir && existsIn(join(dir, program)));

  it("workspace-write: git, make, npm, python (venv, pip), cargo, and a test suite's own sockets work", async () => {
    const steps = [
      "git init -q . && git -c user.name=t -c user.email=t@example.org commit -q --allow-empty -m first && echo git-ok",
      "printf 'all:\\n\\t@echo make-ok\\n' > Makefile && make",
      `mkdir pkg && (cd pkg && npm init -y >/dev/null && echo 'module.exports = "npm-ok"' > index.js) && npm init -y >/dev/null && npm install --offline --no-audit --no-fund ./pkg >/dev/null 2>&1 && node -e 'console.log(require("pkg"))'`,
      "python3 -m venv .venv && python3 mkwheel.py && .venv/bin/pip install -q --no-index mypkg-0.1-py3-none-any.whl && .venv/bin/python -c 'import mypkg; print(mypkg.x)'",
      ...(has("cargo") ? ["cargo new -q --vcs none hello && (cd hello && cargo build -q --offline && ./target/debug/hello)"] : []),
      `python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); socket.create_connection(s.getsockname()); print("tcp-ok")'`,
      `node -e 'const net = require("net"); const s = net.createServer((c) => c.end()).listen("./test.sock", () => net.connect("./test.sock", () => { console.log("unix-ok"); s.close() }))'`,
    ];
    const { code, out, err } = await run(backend, steps.map((step) => `{ ${step}; }`).join(" && "), "workspace-write", workspace);
    // Spool's own lines at the end of stderr aside (below).
    expect({ code, out: out.replace(/^spool: .*\n/gm, "") }).toEqual({
      code: 0,
      out: ["git-ok", "make-ok", "npm-ok", "pip-ok", ...(has("cargo") ? ["Hello, world!"] : []), "tcp-ok", "unix-ok", ""].join("\n"),
    });
    // The repository it made is renamed once it ended (runners/new-repos.ts): git runs what its config names.
    expect(err).toContain("spool: .git is a git directory this command could write");
  }, 600_000);

  it("read-only (after it): reading work runs (git log, make -n, node, npm ls, python, the built program); writing fails", async () => {
    const steps = [
      // The repository made in workspace-write is unknown to git since its end: its HEAD was renamed.
      "cat .git/HEAD.spool-untrusted | wc -l",
      "make -n",
      `node -e 'console.log("node-ok")'`,
      "npm ls >/dev/null && echo npm-ls-ok",
      ".venv/bin/python -c 'import mypkg; print(mypkg.x)'",
      ...(has("cargo") ? ["cargo --version >/dev/null && ./hello/target/debug/hello"] : []),
      "{ touch made 2>/dev/null && echo written; } || echo read-only",
    ];
    const { code, out } = await run(backend, steps.join(" && "), "read-only", workspace);
    expect({ code, out }).toEqual({
      code: 0,
      out: ["1", "echo make-ok", "node-ok", "npm-ls-ok", "pip-ok", ...(has("cargo") ? ["Hello, world!"] : []), "read-only", ""].join("\n"),
    });
  }, 600_000);
});

function existsIn(path: string): boolean {
  try {
    return realpathSync(path) !== "";
  } catch {
    return false;
  }
}
