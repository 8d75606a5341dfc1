import { execFile } from "node:child_process";
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STAMP_FILE, sourceStamp } from "../../scripts/source-stamp.mjs";
import { tempDir } from "../helpers/server.js";

/**
 * bin/spool.js chooses between dist/ (compiled by `npm run build`) and src/ (through tsx): a scratch copy of the
 * launcher with a stand-in CLI on each side, each saying which it is, so the choice is seen, not guessed.
 */

const repo = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

/** What the launcher gives node: a small young generation, dead ArrayBuffers swept at each scavenge (bench/history/README.md). */
const FLAGS = "--max-semi-space-size=2 --no-concurrent-array-buffer-sweeping";
/** And glibc's malloc: one arena, freed memory given back above 128 KiB of slack. */
const MALLOC = "MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=131072";

const SOURCE_MAIN = `import "json-rpc-2.0";
export async function main(argv: string[]): Promise<number> {
  const from: string = "source";
  process.stdout.write(\`\${from} \${process.pid} \${argv.join(" ")} \${process.execArgv.join(" ")}\\n\`);
  return 3;
}
`;
const DIST_MAIN = `export async function main(argv) {
  process.stdout.write(\`dist \${process.pid} \${argv.join(" ")} \${process.execArgv.join(" ")} MALLOC_ARENA_MAX=\${process.env.MALLOC_ARENA_MAX} MALLOC_TRIM_THRESHOLD_=\${process.env.MALLOC_TRIM_THRESHOLD_}\\n\`);
  return 4;
}
`;

describe("bin/spool.js runs dist/ only when it is a build of the sources present", () => {
  let dir: string;
  const src = () => join(dir, "src");
  const dist = () => join(dir, "dist");
  /** What `npm run build` leaves: dist/ with the stamp of the sources as they are now. */
  const stampNow = () => writeFileSync(join(dist(), STAMP_FILE), `${sourceStamp(src())}\n`);

  /** Runs the launcher as `node bin/spool.js …`; resolves with what the chosen CLI printed and its exit code. */
  async function spool(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ from: string; code: number; line: string }> {
    const child = run(process.execPath, [join(dir, "bin", "spool.js"), ...args], { env: { ...process.env, SPOOL_FROM_SOURCE: "", ...env } });
    const code = await child.then(
      () => 0,
      (error: { code?: number }) => error.code ?? -1,
    );
    const { stdout } = await child.catch((error: { stdout: string }) => ({ stdout: error.stdout }));
    return { from: stdout.split(" ")[0]!, code, line: stdout.trim() };
  }

  beforeAll(() => {
    dir = tempDir("spool-launcher-");
    mkdirSync(join(dir, "bin"));
    mkdirSync(join(dir, "scripts"));
    mkdirSync(join(src(), "cli"), { recursive: true });
    mkdirSync(join(dist(), "bundle", "cli"), { recursive: true });
    copyFileSync(join(repo, "bin", "spool.js"), join(dir, "bin", "spool.js"));
    copyFileSync(join(repo, "scripts", "source-stamp.mjs"), join(dir, "scripts", "source-stamp.mjs"));
    symlinkSync(join(repo, "node_modules"), join(dir, "node_modules"), "dir");
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "spool-launcher-scratch", private: true, type: "module" }));
    writeFileSync(join(src(), "cli", "main.ts"), SOURCE_MAIN);
    writeFileSync(join(src(), "cli", "words.ts"), "export const WORDS = 1;\n");
    writeFileSync(join(dist(), "bundle", "cli", "main.js"), DIST_MAIN);
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a fresh build runs from dist/, with the arguments and exit code passed through", async () => {
    stampNow();
    expect(await spool(["serve", "--port", "0"])).toMatchObject({ from: "dist", code: 4 });
    expect((await spool(["serve", "--port", "0"])).line).toMatch(/^dist \d+ serve --port 0/);
  });

  it("a source file edited since the build runs the sources", async () => {
    stampNow();
    appendFileSync(join(src(), "cli", "words.ts"), "// edited\n");
    expect(await spool(["--version"])).toMatchObject({ from: "source", code: 3 });
    stampNow();
    expect((await spool(["--version"])).from).toBe("dist");
  });

  it("a source file whose modification time alone changed runs the sources", async () => {
    stampNow();
    const later = new Date(Date.now() + 5_000);
    utimesSync(join(src(), "cli", "words.ts"), later, later);
    expect((await spool([])).from).toBe("source");
  });

  it("a source file added or removed since the build runs the sources", async () => {
    stampNow();
    writeFileSync(join(src(), "cli", "new.ts"), "export {};\n");
    expect((await spool([])).from).toBe("source");
    stampNow();
    expect((await spool([])).from).toBe("dist");
    rmSync(join(src(), "cli", "new.ts"));
    expect((await spool([])).from).toBe("source");
  });

  it("a migration (migrations/, compiled into dist/ too) added or edited since the build runs the sources", async () => {
    stampNow();
    mkdirSync(join(dir, "migrations"), { recursive: true });
    writeFileSync(join(dir, "migrations", "index.ts"), "export const SCHEMA_MIGRATIONS = {};\n");
    expect((await spool([])).from).toBe("source");
    stampNow();
    expect((await spool([])).from).toBe("dist");
    appendFileSync(join(dir, "migrations", "index.ts"), "// edited\n");
    expect((await spool([])).from).toBe("source");
    rmSync(join(dir, "migrations"), { recursive: true });
  });

  it("a build input edited since the build (the bundler's script, a dependency in package-lock.json) runs the sources", async () => {
    // The bundle holds the dependencies' code: `npm install` of another version makes the build stale like a source edit.
    for (const input of ["scripts/bundle-dist.mjs", "package-lock.json"]) {
      writeFileSync(join(dir, input), "{}\n");
      stampNow();
      expect((await spool([])).from, input).toBe("dist");
      appendFileSync(join(dir, input), "\n");
      expect((await spool([])).from, input).toBe("source");
      rmSync(join(dir, input));
      expect((await spool([])).from, input).toBe("source");
    }
  });

  it("no stamp (a build that did not finish, or an older one) or no dist/ at all runs the sources", async () => {
    stampNow();
    rmSync(join(dist(), STAMP_FILE));
    expect((await spool([])).from).toBe("source");
    writeFileSync(join(dist(), STAMP_FILE), "not a stamp\n");
    expect((await spool([])).from).toBe("source");
    rmSync(dist(), { recursive: true });
    expect((await spool([])).from).toBe("source");
    mkdirSync(join(dist(), "bundle", "cli"), { recursive: true });
    writeFileSync(join(dist(), "bundle", "cli", "main.js"), DIST_MAIN);
  });

  it("SPOOL_FROM_SOURCE=1 runs the sources over a fresh build; empty or 0 does not", async () => {
    stampNow();
    expect((await spool([], { SPOOL_FROM_SOURCE: "1" })).from).toBe("source");
    expect((await spool([], { SPOOL_FROM_SOURCE: "0" })).from).toBe("dist");
    expect((await spool([], { SPOOL_FROM_SOURCE: "" })).from).toBe("dist");
  });

  it("from the sources, a tsconfig.json in the working directory (a project's, which a command may write) maps none of their imports", async () => {
    const project = tempDir("spool-launcher-project-");
    const marker = join(project, "ran");
    writeFileSync(join(project, "evil.mjs"), `import { writeFileSync } from "node:fs"; writeFileSync(${JSON.stringify(marker)}, "");\n`);
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify({ compilerOptions: { paths: { "json-rpc-2.0": ["./evil.mjs"] } } }));
    const child = run(process.execPath, [join(dir, "bin", "spool.js")], { cwd: project, env: { ...process.env, SPOOL_FROM_SOURCE: "1" } });
    const { stdout } = await child.catch((error: { stdout: string }) => ({ stdout: error.stdout }));
    expect(stdout.split(" ")[0]).toBe("source");
    expect(existsSync(marker), "the project's file ran").toBe(false);
  });

  it("an installed package (dist/ and no src/) runs dist/ whatever its stamp; SPOOL_FROM_SOURCE there is an error", async () => {
    rmSync(join(dist(), STAMP_FILE), { force: true });
    const moved = join(dir, "src-away");
    renameSync(src(), moved);
    try {
      expect(await spool(["--version"])).toMatchObject({ from: "dist", code: 4 });
      const refused = await run(process.execPath, [join(dir, "bin", "spool.js")], { env: { ...process.env, SPOOL_FROM_SOURCE: "1" } }).catch(
        (error: { code: number; stderr: string }) => error,
      );
      expect(refused).toMatchObject({ code: 2 });
      expect((refused as { stderr: string }).stderr).toContain("has no src/");
    } finally {
      renameSync(moved, src());
    }
    expect((await spool([])).from).toBe("source");
  });

  it("run as a program, it is node itself (no wrapper process) with the shebang's small young generation and malloc settings", async () => {
    stampNow();
    const env: NodeJS.ProcessEnv = { ...process.env, SPOOL_FROM_SOURCE: "" };
    delete env.MALLOC_ARENA_MAX;
    delete env.MALLOC_TRIM_THRESHOLD_;
    const child = run(join(dir, "bin", "spool.js"), ["serve"], { env });
    const pid = child.child.pid;
    const { stdout } = await child.catch((error: { stdout: string }) => ({ stdout: error.stdout }));
    expect(stdout.trim()).toBe(`dist ${pid} serve ${FLAGS} ${MALLOC}`);
  });

  it("`npm start` gives node the same variables and flags as the shebang", () => {
    const shebang = readFileSync(join(repo, "bin", "spool.js"), "utf8").split("\n", 1)[0]!;
    const m = /^#!\/usr\/bin\/env -S((?: [A-Za-z_]\w*=\S*)*) node((?: -\S+)*)$/.exec(shebang);
    const [vars, flags] = [m?.[1]?.trim(), m?.[2]?.trim()];
    expect([vars, flags]).toEqual([MALLOC, FLAGS]);
    const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(`${vars} node ${flags} bin/spool.js serve`);
    expect(pkg.scripts.spool).toBe(`${vars} node ${flags} bin/spool.js`);
  });
});
