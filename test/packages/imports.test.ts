import { execFile } from "node:child_process";
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERRORS } from "../../src/rpc/errors.js";
import { builtDist } from "../helpers/build.js";
import { spawnCli } from "../helpers/process.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * spool/plugin, spool/client and spool/protocol as another project sees them: a scratch directory outside the
 * repository whose node_modules/spool links to it, plain .mjs files run by node (no tsx, no
 * TypeScript), importing the package's built entry points (dist/, what package.json exports).
 */

const repo = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

/** A project that depends on spool (and on zod, which plugins use for their schemas). */
function scratchProject(): string {
  const dir = tempDir("spool-consumer-");
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(repo, join(dir, "node_modules", "spool"), "dir");
  symlinkSync(join(repo, "node_modules", "zod"), join(dir, "node_modules", "zod"), "dir");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: { spool: "*", zod: "*" } }));
  return dir;
}

async function node(dir: string, file: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { stdout } = await run(process.execPath, [join(dir, file)], { cwd: dir, env: { ...process.env, ...env }, timeout: 30_000 });
  return stdout;
}

/** A plugin module as someone would write it in their own project. */
const GREETER = (name: string) => `import { defineMethod, definePlugin, SpoolError } from "spool/plugin";
import { z } from "zod";

export default definePlugin({
  name: ${JSON.stringify(name)},
  setup(app) {
    app.method(
      defineMethod({
        name: "${name}/hello",
        description: "Greets; an empty name is NOT_FOUND.",
        params: z.strictObject({ who: z.string() }),
        result: z.object({ text: z.string() }),
        handler: ({ who }) => {
          if (!who) throw new SpoolError("NOT_FOUND", "nobody to greet", { who });
          return { text: \`hello \${who} from ${name}\` };
        },
      }),
    );
  },
});
`;

describe("spool/plugin and spool/client from a plain JavaScript project", () => {
  let ts: TestServer;
  let dir: string;

  beforeAll(async () => {
    // A build of the current sources (a stale dist/ would test old code): rebuilt when the sources changed since.
    await builtDist();
    dir = scratchProject();
    ts = await startTestServer({ localRunner: false });
  }, 150_000);
  afterAll(async () => {
    await ts?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("spool/plugin: definePlugin, defineMethod, serviceKey, SpoolError, the statuses", async () => {
    writeFileSync(
      join(dir, "plugin-api.mjs"),
      `import { AGENT_LOOP, defineMethod, definePlugin, ENTRY, ERRORS, isPlugin, MODEL_PROVIDERS, RUN, serviceKey, SpoolError } from "spool/plugin";
import { z } from "zod";

const method = defineMethod({ name: "demo/echo", description: "echo", params: z.strictObject({ x: z.number() }), result: z.number(), handler: ({ x }) => x });
const plugin = definePlugin({ name: "demo", dependencies: ["runs"], setup(app) { app.method(method); } });
console.log(JSON.stringify({ name: plugin.name, dependencies: plugin.dependencies, isPlugin: isPlugin(plugin), method: method.name }));
try {
  definePlugin({ name: "Bad Name", setup() {} });
} catch (error) {
  console.log("refused:", error.message);
}
const error = new SpoolError("CONFLICT", "taken", { alias: "a" });
console.log(error instanceof SpoolError, error.rpcCode === ERRORS.CONFLICT.code, error.errorName);
console.log(ENTRY.proposed, ENTRY.done, RUN.running, serviceKey("mine").name, AGENT_LOOP.name, MODEL_PROVIDERS.name);
`,
    );
    expect((await node(dir, "plugin-api.mjs")).split("\n")).toEqual([
      JSON.stringify({ name: "demo", dependencies: ["runs"], isPlugin: true, method: "demo/echo" }),
      'refused: Plugin name "Bad Name" must be lowercase letters, digits and dashes',
      "true true CONFLICT",
      "202 200 102 mine agent-loop model-providers",
      "",
    ]);
  });

  it("the plugin API's MODEL_PROVIDERS is the key the agent plugin provides", async () => {
    const [{ MODEL_PROVIDERS: published }, { MODEL_PROVIDERS: provided }] = await Promise.all([
      import("spool/plugin"),
      import("../../src/features/agent/index.js"),
    ]);
    expect(published.name).toBe(provided.name);
  });

  it("spool/client: connects to a real server, ping, initialize, a method and a typed error", async () => {
    writeFileSync(
      join(dir, "client.mjs"),
      `import { SpoolClient, SpoolRpcError } from "spool/client";

const client = await SpoolClient.connect(process.env.SPOOL_URL, { token: process.env.SPOOL_TOKEN });
console.log("ping", (await client.call("ping", {})).pong);
const init = await client.initialize("consumer", { root: process.env.PROJECT_ROOT });
console.log("project", init.project.name, init.protocolVersion);
const { run } = await client.call("run/create", { alias: "from-js" });
console.log("run", run.alias, run.status);
try {
  await client.call("run/get", { run: "no-such-run" });
} catch (error) {
  console.log("error", error instanceof SpoolRpcError, error.errorCode);
}
client.close();
`,
    );
    const out = await node(dir, "client.mjs", { SPOOL_URL: ts.server.url, SPOOL_TOKEN: ts.server.token, PROJECT_ROOT: ts.root });
    expect(out).toBe("ping true\nproject consumer 1.0\nrun from-js 200\nerror true NOT_FOUND\n");
  });

  it("spool/protocol: a typed producer view, the statuses and the request descriptors in plain Node, type-checked by tsc, and bundled for a browser without Node built-ins", async () => {
    const program = `import { ENTRY, STATUS, methods, producerView, entryStatusWord } from "spool/protocol";
import type { ParamsOf, Producer } from "spool/protocol";

const producer: Producer = producerView({
  path: "log://turn_1/sh/ls",
  status: STATUS.entry.done,
  turn: 1,
  attributes: { tool: "sh", command: "ls", outcome: "completed", status: 500, exit_code: 2, duration: 40, runner: "local" },
});
const exit: number | null = producer.exitCode;
console.log(producer.state, exit, producer.durationMs, producer.runner, entryStatusWord(ENTRY.failed), STATUS.run.waiting);
const params: ParamsOf<"run/create"> = { alias: "scratch", mode: "ask" };
console.log(methods["run/create"].params.safeParse(params).success, methods["run/create"].params.safeParse({ ...params, bogus: 1 }).success);
`;
    writeFileSync(join(dir, "protocol.ts"), program);
    // A misspelt field must be a compile error there too: checked in the same program, one tsc run for both files
    // (each run type-checks the package's declarations and zod's, ~7 s of CPU; the files are modules, apart).
    writeFileSync(join(dir, "protocol-misspelt.ts"), program.replace("producer.exitCode", "producer.exit_code"));
    // What a TypeScript project would check: the package's exports map and its declarations, no paths into src/.
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: false, types: [] },
        files: ["protocol.ts", "protocol-misspelt.ts"],
      }),
    );
    const tsc = join(repo, "node_modules", "typescript", "bin", "tsc");
    // One thread: TypeScript 7's parallel checkers took ~3 times the CPU for these two files (tsc's default, measured).
    const checked = await run(process.execPath, [tsc, "--singleThreaded", "-p", join(dir, "tsconfig.json")], { cwd: dir, timeout: 60_000 }).then(
      () => "",
      (error: { stdout?: string }) => error.stdout ?? "",
    );
    // Every error is the misspelt file's: protocol.ts and the declarations it reaches check clean.
    const elsewhere = checked.split("\n").filter((line) => /error TS\d+/.test(line) && !line.startsWith("protocol-misspelt.ts("));
    if (elsewhere.length > 0) throw new Error(`tsc in the scratch project failed:\n${checked}`);
    expect(checked).toContain("Property 'exit_code' does not exist on type");
    writeFileSync(
      join(dir, "protocol.mjs"),
      program
        .replace('import type { ParamsOf, Producer } from "spool/protocol";\n', "")
        .replace('const params: ParamsOf<"run/create"> =', "const params =")
        .replace("const producer: Producer =", "const producer =")
        .replace("const exit: number | null =", "const exit ="),
    );
    expect(await node(dir, "protocol.mjs")).toBe("failed 2 40 local failed 202\ntrue false\n");
    // A browser bundle: esbuild refuses any node: import or Node built-in on the browser platform, so a build that succeeds has none.
    const bundle = await build({
      stdin: {
        contents:
          "import { methods, producerView, STATUS } from 'spool/protocol';\nconsole.log(producerView, STATUS, methods['run/create'].params.safeParse({}).success);",
        resolveDir: dir,
        loader: "js",
      },
      absWorkingDir: dir,
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      logLevel: "silent",
    });
    const js = bundle.outputFiles[0]!.text;
    expect(js).toContain("producerView");
    expect(js).not.toMatch(/\brequire\(|from\s*["']node:/);
  }, 120_000);

  it("spool serve loads plugins that import spool/plugin: from config.json (relative to it) and --plugin (relative to the current directory)", async () => {
    // The home inside the project, so the plugin there finds the project's node_modules (spool, zod).
    const home = join(dir, "spool-home");
    mkdirSync(join(home, "plugins"), { recursive: true });
    writeFileSync(join(home, "plugins", "from-config.mjs"), GREETER("from-config"));
    writeFileSync(join(home, "config.json"), JSON.stringify({ plugins: ["./plugins/from-config.mjs"] }));
    writeFileSync(join(dir, "from-flag.mjs"), GREETER("from-flag"));
    // Started in the scratch project, outside the repository: its plugins get spool/plugin's build, not the server's sources.
    const serve = spawnCli(["serve", "--home", home, "--port", "0", "--no-local-runner", "--plugin", "./from-flag.mjs"], { SPOOL_HOME: home }, { cwd: dir });
    try {
      await Promise.race([
        serve.waitFor(/Spool listening on ws:\/\/\S+/, "stdout", 60_000),
        serve.exit.then((code) => Promise.reject(new Error(`spool serve exited with ${code}:\n${serve.stderr()}`))),
      ]);
      const url = /Spool listening on (ws:\/\/\S+)/.exec(serve.stdout())![1]!;
      writeFileSync(
        join(dir, "greet.mjs"),
        `import { readFileSync } from "node:fs";
import { SpoolClient } from "spool/client";

const client = await SpoolClient.connect(process.env.SPOOL_URL, { token: readFileSync(process.env.TOKEN_FILE, "utf8").trim() });
await client.initialize("greetings", { root: process.env.PROJECT_ROOT });
for (const plugin of ["from-config", "from-flag"]) {
  console.log((await client.call(plugin + "/hello", { who: "js" })).text);
  // A SpoolError from the plugin's copy of the API is still the error it means, not an internal error.
  await client.call(plugin + "/hello", { who: "" }).catch((error) => console.log(error.code, error.errorCode, error.message));
}
client.close();
`,
      );
      // The project's root apart from the home and the plugins (a root that holds them is refused).
      const root = join(dir, "greetings");
      mkdirSync(root, { recursive: true });
      const out = await node(dir, "greet.mjs", { SPOOL_URL: url, TOKEN_FILE: join(home, "token"), PROJECT_ROOT: root });
      const notFound = `${ERRORS.NOT_FOUND.code} NOT_FOUND nobody to greet`;
      expect(out).toBe(`hello js from from-config\n${notFound}\nhello js from from-flag\n${notFound}\n`);
    } finally {
      serve.child.kill("SIGTERM");
      await serve.exit;
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("a relative --plugin path is looked for in the current directory, not the Spool home", async () => {
    const home = tempDir("spool-home-");
    writeFileSync(join(home, "only-in-home.mjs"), GREETER("only-in-home"));
    const serve = spawnCli(["serve", "--home", home, "--port", "0", "--no-local-runner", "--plugin", "./only-in-home.mjs"], { SPOOL_HOME: home }, { cwd: dir });
    const { code } = await serve.exitsWithin(60_000);
    expect(code).not.toBe(0);
    expect(serve.stderr()).toContain(`Cannot load plugin "${join(dir, "only-in-home.mjs")}"`);
    rmSync(home, { recursive: true, force: true });
  });
});
