import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { LAYERS, type Layer } from "../src/docs/layers.js";

// The layout of src/ (src/docs/layers.ts, drawn in docs/spec/layout.md, §16), held against the sources' import statements (the
// same reading as scripts/check-cycles.mjs): each file imports only its row's own folders and files and what the
// row lets it import, and uses none of the names the row forbids.
const root = fileURLToPath(new URL("..", import.meta.url));
const src = join(root, "src");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : /\.ts$/.test(name) ? [path] : [];
  });
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g;
const code = (file: string) => readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, "");

/** Every import of `file` (a path under src/, e.g. `core/index.ts`): relative ones as paths under src/ (`store/runs.ts`), others as written (`node:fs`, `zod`). */
function importsOf(file: string): string[] {
  return [...code(join(src, file)).matchAll(SPECIFIER)].map(([, spec]) =>
    spec!.startsWith(".") ? relative(src, resolve(dirname(join(src, file)), spec!)).replace(/\.js$/, ".ts") : spec!,
  );
}

const within = (path: string, place: string) => path === place || path.startsWith(`${place}/`);

/** The row a file of src/ belongs to: the row naming it, else the row of its nearest folder. */
function rowOf(file: string): Layer | undefined {
  let best: { layer: Layer; length: number } | undefined;
  for (const layer of LAYERS) {
    for (const path of layer.paths) if (within(file, path) && path.length > (best?.length ?? -1)) best = { layer, length: path.length };
  }
  return best?.layer;
}

/** Whether a file of `layer` may import `target` (as importsOf gives it). */
function allows(layer: Layer, target: string): boolean {
  if (target.startsWith("node:")) return layer.node;
  if (!/\.tsx?$/.test(target) || target.startsWith("..")) {
    const name = target
      .split("/")
      .slice(0, target.startsWith("@") ? 2 : 1)
      .join("/");
    return layer.packages === "any" || layer.packages.includes(name);
  }
  if (layer.except?.some((path) => within(target, path))) return false;
  return [...layer.paths, ...layer.imports].some((path) => within(target, path));
}

/** The names of the row's `never` that `text` uses. */
const forbidden = (layer: Layer, text: string) => (layer.never ?? []).filter((n) => new RegExp(`\\b${n.name}\\b`).test(text)).map((n) => n.name);

const files = sources(src).map((file) => relative(src, file));

describe("src/ keeps the layout docs/spec/layout.md (§16) draws (src/docs/layers.ts)", () => {
  it("every source file belongs to a row", () => {
    expect(files.length).toBeGreaterThan(100);
    expect(files.filter((file) => !rowOf(file))).toEqual([]);
  });

  for (const layer of LAYERS) {
    it(`${layer.paths.join(", ")} imports only ${[...layer.imports, ...(layer.packages === "any" ? [] : layer.packages)].join(", ") || "itself"}`, () => {
      const own = files.filter((file) => rowOf(file) === layer);
      expect(own.length, `${layer.paths.join(", ")} has sources`).toBeGreaterThan(0);
      const offenders = own.flatMap((file) => importsOf(file).flatMap((target) => (allows(layer, target) ? [] : [`${file}: ${target}`])));
      expect(offenders).toEqual([]);
    });
  }

  it("every street is one-way: no two rows may import each other, in the table or in the code", () => {
    const name = (layer: Layer) => layer.paths.join(", ");
    const declares = (from: Layer, to: Layer) => from.imports.some((imp) => to.paths.some((path) => within(path, imp) || within(imp, path)));
    const imports = (from: Layer, to: Layer) => files.some((file) => rowOf(file) === from && importsOf(file).some((target) => rowOf(target) === to));
    const twoWay = (reaches: (a: Layer, b: Layer) => boolean) =>
      LAYERS.flatMap((a, i) => LAYERS.slice(i + 1).flatMap((b) => (reaches(a, b) && reaches(b, a) ? [`${name(a)} <-> ${name(b)}`] : [])));
    expect(twoWay(declares)).toEqual([]);
    expect(twoWay(imports)).toEqual([]);
    // The streets issue 58 closed stay closed: downward only.
    const row = (file: string) => rowOf(file)!;
    expect([
      allows(row("core/deps.ts"), "plugins/host.ts"),
      allows(row("runners/local/embedded.ts"), "core/runners/registry.ts"),
      allows(row("rpc/errors.ts"), "store/errors.ts"),
      allows(row("model/model-view.ts"), "store/entries.ts"),
    ]).toEqual([false, false, false, false]);
    // The store's engines and its search sit below its repositories, and beside each other: nothing imports back up
    // or across (what they share is at the top of src/store/, a row of its own).
    expect([
      allows(row("store/sqlite/database.ts"), "store/runs.ts"),
      allows(row("store/sqlite/chunks.ts"), "store/postgres/postgres.ts"),
      allows(row("store/postgres/postgres.ts"), "store/sqlite/chunks.ts"),
      allows(row("store/postgres/postgres.ts"), "store/entries.ts"),
      allows(row("store/search/search.ts"), "store/repositories.ts"),
      allows(row("store/search/search.ts"), "store/sqlite/database.ts"),
      allows(row("store/store.ts"), "store/sqlite/busy.ts"),
      allows(row("store/repositories.ts"), "store/search/search.ts"),
    ]).toEqual([false, false, false, false, false, false, false, true]);
  });

  it("features and the agent never name the repositories: they call core's services, which own the queries", () => {
    expect(rowOf("features/index.ts")!.never?.map((n) => n.name)).toContain("repos");
    expect(rowOf("agent/loop.ts")!.never?.map((n) => n.name)).toContain("repos");
    expect(forbidden(rowOf("core/streams/watchers.ts")!, `const head = '{"jsonrpc":"2.0","method":"stream/data"';`)).toEqual(["jsonrpc"]);
    expect(files.flatMap((file) => forbidden(rowOf(file)!, code(join(src, file))).map((name) => `${file}: ${name}`))).toEqual([]);
  });

  it("every command's body is in src/cli/commands/: main.ts's table loads only from there, and the shared files of src/cli/ never import it", () => {
    const loaded = [...code(join(src, "cli/main.ts")).matchAll(/\bimport\(\s*["']([^"']+)["']/g)].map(([, spec]) => spec!);
    expect(loaded.length).toBeGreaterThan(20);
    expect(loaded.filter((spec) => !spec.startsWith("./commands/"))).toEqual([]);
    const shared = files.filter((file) => within(file, "cli") && !within(file, "cli/commands") && file !== "cli/main.ts");
    expect(shared.length).toBeGreaterThan(5);
    expect(shared.filter((file) => /\b(?:defineCommand|commandOf)\(/.test(code(join(src, file))))).toEqual([]);
    expect(
      shared.flatMap((file) =>
        importsOf(file)
          .filter((target) => within(target, "cli/commands"))
          .map((target) => `${file}: ${target}`),
      ),
    ).toEqual([]);
  });

  it("refuses what a row does not allow (the rules can fail)", () => {
    const features = rowOf("features/runs/list.ts")!;
    expect(allows(features, "core/runs/index.ts")).toBe(true);
    expect(allows(features, "store/runs.ts")).toBe(false);
    expect(allows(features, "node:fs")).toBe(true);
    const protocol = rowOf("protocol/common.ts")!;
    expect([allows(protocol, "zod"), allows(protocol, "kysely"), allows(protocol, "node:fs"), allows(protocol, "rpc/errors.ts")]).toEqual([
      true,
      false,
      false,
      false,
    ]);
    const page = rowOf("web/page/app.ts")!;
    expect([allows(page, "client/spool-client.ts"), allows(page, "client/ws-transport.ts")]).toEqual([true, false]);
    // A file's own row wins over its folder's: the hosts may start the server, the client commands may not.
    expect(allows(rowOf("cli/commands/serve.ts")!, "server/server.ts")).toBe(true);
    expect(allows(rowOf("cli/commands/token.ts")!, "server/server.ts")).toBe(false);
    expect(allows(rowOf("acp/session.ts")!, "mcp/sessions/bridge.ts")).toBe(false);
    // MCP's two wings stand on one floor and never on each other; only the entries above reach both.
    expect(allows(rowOf("mcp/sessions/server.ts")!, "mcp/stateless/wire.ts")).toBe(false);
    expect(allows(rowOf("mcp/stateless/modern.ts")!, "mcp/sessions/bridge.ts")).toBe(false);
    expect(allows(rowOf("mcp/spool/tools.ts")!, "mcp/sessions/tasks.ts")).toBe(false);
    expect(allows(rowOf("mcp/stdio.ts")!, "mcp/sessions/bridge.ts")).toBe(true);
    expect(allows(rowOf("server/front.ts")!, "mcp/stateless/modern.ts")).toBe(false);
    expect(forbidden(features, "const run = await ctx.core.repos.runs.findRun(1, 'a');")).toEqual(["repos"]);
    expect(forbidden(features, "const { repos } = ctx.core;")).toEqual(["repos"]);
    expect(forbidden(features, "const run = await ctx.core.runs.find(project, 'a');")).toEqual([]);
  });

  it("the migrations (the top-level migrations/, a tsc project of their own with rootDir migrations) import only kysely and each other", () => {
    const migrations = sources(join(root, "migrations"));
    expect(migrations.length).toBeGreaterThan(10);
    // importsOf reads a path under src/: a migration's is `../migrations/…`, and so are its own imports.
    const offenders = migrations.flatMap((file) =>
      importsOf(relative(src, file))
        .filter((target) => target !== "kysely" && !target.startsWith("../migrations/"))
        .map((target) => `${relative(root, file)}: ${target}`),
    );
    expect(offenders).toEqual([]);
  });

  it("no program hides in a string: no template literal of src/ holds JavaScript that a worker or a process runs", () => {
    const offenders = files.filter((file) => programsIn(readFileSync(join(src, file), "utf8")).length > 0);
    expect(offenders).toEqual([]);
    // The check can fail: the checkpoint worker as it was kept (a template string a Worker evaluated).
    expect(programsIn('const WORKER = `\nconst { parentPort } = require("node:worker_threads");\nparentPort.on("message", () => {});\n`;')).toHaveLength(1);
  });
});

/** The template literals of `text` that read like a JavaScript program: a require() or an import over several lines. */
function programsIn(text: string): string[] {
  return [...text.matchAll(/`(?:[^`\\]|\\.)*`/gs)]
    .map(([literal]) => literal)
    .filter((literal) => literal.includes("\n") && /\brequire\(|^\s*import\s/m.test(literal));
}

describe("a feature's folder holds its plugin and what the plugin registers", () => {
  // run/resolve decides a proposal: the proposals feature registers it, from features/proposals/resolve.ts.
  const featureOf = (file: string) => (within(file, "features") && file.includes("/", "features/".length) ? file.split("/")[1]! : null);
  const crossings = (file: string, targets: string[]) =>
    targets.filter((target) => featureOf(file) && featureOf(target) && featureOf(target) !== featureOf(file)).map((target) => `${file}: ${target}`);

  it("no feature imports another feature's files", () => {
    expect(files.flatMap((file) => crossings(file, importsOf(file)))).toEqual([]);
    // The rule can fail: the proposals plugin registering run/resolve from features/runs/, as it did.
    expect(crossings("features/proposals/index.ts", ["features/runs/resolve.ts"])).toHaveLength(1);
  });

  it("every method a features/ file binds is registered by its own folder's plugin", () => {
    const text = (folder: string) =>
      files
        .filter((file) => featureOf(file) === folder)
        .map((file) => code(join(src, file)))
        .join("\n");
    const bound = files
      .filter((file) => featureOf(file))
      .flatMap((file) =>
        [...code(join(src, file)).matchAll(/export const (\w+) = defineMethod\(\{\s*\.\.\.methods\["([^"]+)"\]/g)].map(([, name, method]) => ({
          file,
          name: name!,
          method: method!,
        })),
      );
    expect(bound.length).toBeGreaterThan(25);
    const unregistered = bound.filter(({ file, name }) => !new RegExp(`\\bapp\\.method\\(${name}\\)`).test(text(featureOf(file)!)));
    expect(unregistered.map(({ file, method }) => `${method} in ${file}`)).toEqual([]);
  });
});

/** The composition functions issue 49 split into named stages: none grows back past this. */
const LONGEST = 120;
/** Every other function of src/ (issue 76: `propose`, `LocalBackend#run`, the runner's start, the checkpointer's were split). */
const LONGEST_ANYWHERE = 100;

const TOP_FUNCTION =
  /^(?:export\s+)?(?:default\s+)?(?:async\s+)?function\*?\s*(\w+)|^(?:export\s+)?const\s+(\w+)\s*(?::[^=]+)?=\s*(?:async\s*)?(?:\(|<|function\b|\w+\s*=>)/;
const MODIFIERS = String.raw`(?:(?:public|private|protected|readonly|static|async|override|get|set)\s+)*`;
const MEMBER = new RegExp(
  String.raw`^  ${MODIFIERS}(#?\w+)\s*(?:<[^>]*>)?\(|^  ${MODIFIERS}(#?\w+)\s*(?::[^=]+)?=\s*(?:async\s*)?(?:\(|<|function\b|\w+\s*=>)`,
);

/**
 * The length in lines of each top-level function (declared, or a const arrow) and each class member function (method,
 * constructor, arrow field) of `text`, by indentation: from its header to the first line after it at the header's
 * indentation or less that is not the rest of a signature (`): T {`); a closing `}` there is counted.
 */
function functionLengths(text: string): { name: string; line: number; lines: number }[] {
  const lines = text.split("\n");
  const found: { name: string; line: number; lines: number }[] = [];
  let inClass = false;
  lines.forEach((line, i) => {
    if (/^(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\b/.test(line)) inClass = true;
    else if (/^\}/.test(line)) inClass = false;
    const header = TOP_FUNCTION.exec(line) ?? (inClass ? MEMBER.exec(line) : null);
    if (!header) return;
    const indent = line.length - line.trimStart().length;
    let end = i + 1;
    while (end < lines.length) {
      const next = lines[end]!;
      if (next.trim() !== "" && next.length - next.trimStart().length <= indent && !next.trimStart().startsWith(")")) break;
      end++;
    }
    const closes = lines[end]?.trimStart().startsWith("}") ?? false;
    // A function without a closing brace (`=> expression`) ends at its last written line.
    if (!closes) while (end > i + 1 && lines[end - 1]!.trim() === "") end--;
    found.push({ name: (header[1] ?? header[2])!, line: i + 1, lines: end - i + (closes ? 1 : 0) });
  });
  return found;
}

/** The stages the start and `spool act` were split into (issue 58): held to the same measure as the files that tell them. */
const COMPOSITION = [
  "server/server.ts",
  "server/services.ts",
  "server/front.ts",
  "server/http.ts",
  "cli/commands/agent/session.ts",
  "cli/commands/agent/session-state.ts",
];

describe("composition reads as named stages (issue 49)", () => {
  it(`no function in src/server/server.ts, its stages or src/cli/commands/agent/session.ts is over ${LONGEST} lines`, () => {
    for (const file of COMPOSITION) {
      const lengths = functionLengths(readFileSync(join(src, file), "utf8"));
      // The measure sees the functions there are (a measure that finds none passes everything).
      expect(lengths.length, file).toBeGreaterThan(1);
      expect(lengths.filter((f) => f.lines > LONGEST).map((f) => `${file}:${f.line} ${f.name} is ${f.lines} lines`)).toEqual([]);
    }
  });

  it(`no function anywhere under src/ is over ${LONGEST_ANYWHERE} lines (issue 76: one over it is split into named steps)`, () => {
    const sources = everyFile(src).filter((path) => path.endsWith(".ts"));
    const lengths = sources.flatMap((path) => functionLengths(readFileSync(path, "utf8")).map((f) => ({ ...f, file: relative(src, path) })));
    // The measure sees the functions there are.
    expect(lengths.length).toBeGreaterThan(sources.length);
    expect(lengths.filter((f) => f.lines > LONGEST_ANYWHERE).map((f) => `${f.file}:${f.line} ${f.name} is ${f.lines} lines`)).toEqual([]);
  });

  it("the measure catches a long function, method or arrow field, and counts short ones right", () => {
    const body = (indent: string, n: number) => Array.from({ length: n }, (_, i) => `${indent}  const a${i} = ${i};`).join("\n");
    const text = [
      "export async function drive(",
      "  client: Client,",
      "): Promise<number> {",
      body("", 130),
      "}",
      "const short = (x: number) => {",
      "  return x;",
      "};",
      "const oneLine = (x: number) => x;",
      "",
      "class Session {",
      "  readonly say = (text: string) =>",
      "    console.log(text);",
      "  async onProposal(p: Proposal) {",
      body("  ", 125),
      "  }",
      "  readonly onState = (p: State) => {",
      body("  ", 3),
      "  };",
      "}",
      "function after() {",
      "  if (x) {",
      "  }",
      "}",
    ].join("\n");
    expect(functionLengths(text).map(({ name, lines }) => `${name} ${lines}`)).toEqual([
      "drive 134",
      "short 3",
      "oneLine 1",
      "say 2",
      "onProposal 127",
      "onState 5",
      "after 4",
    ]);
  });
});

/** The most lines a file of src/ (and a file of code beside it) may have (issue 58): past it, it is split by concern into files beside it. */
const LONGEST_FILE = 500;

/** Every file under `dir`, whatever its kind (sources, styles, the page's HTML). */
function everyFile(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? everyFile(path) : [path];
  });
}

/** Lines as `wc -l` counts them, a last line without its newline included. */
const lineCount = (text: string) => text.split("\n").length - (text.endsWith("\n") ? 1 : 0);

/** The files of `texts` (path → text) over LONGEST_FILE lines, each with its count. */
const overLong = (texts: [string, string][]) =>
  texts.flatMap(([file, text]) => (lineCount(text) > LONGEST_FILE ? [`${file} is ${lineCount(text)} lines`] : []));

describe("files stay short (issue 58)", () => {
  it(`no file under src/ is over ${LONGEST_FILE} lines`, () => {
    const all = everyFile(src).map((path): [string, string] => [relative(src, path), readFileSync(path, "utf8")]);
    expect(all.length).toBeGreaterThan(files.length);
    expect(overLong(all)).toEqual([]);
  });

  it(`no code under test/, bench/, scripts/, migrations/ or bin/ is over ${LONGEST_FILE} lines either`, () => {
    const code = ["test", "bench", "scripts", "migrations", "bin"]
      .flatMap((dir) => everyFile(join(root, dir)))
      .filter((path) => /\.(?:ts|mts|mjs|js|sh)$/.test(path))
      .map((path): [string, string] => [relative(root, path), readFileSync(path, "utf8")]);
    expect(code.length).toBeGreaterThan(300);
    expect(overLong(code)).toEqual([]);
  });

  it("the count can fail: 501 lines are refused, 500 pass, with or without a last newline", () => {
    const lines = (n: number) => Array.from({ length: n }, (_, i) => `const a${i} = ${i};`).join("\n");
    expect(overLong([["long.ts", `${lines(501)}\n`]])).toEqual(["long.ts is 501 lines"]);
    expect(overLong([["long.ts", lines(501)]])).toEqual(["long.ts is 501 lines"]);
    expect(
      overLong([
        ["ok.ts", `${lines(500)}\n`],
        ["ok2.ts", lines(500)],
        ["empty.ts", ""],
      ]),
    ).toEqual([]);
  });
});
