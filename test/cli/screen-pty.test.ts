import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { defaultRunnerName, escapeControl, FACT_LABELS, factsText } from "../../src/protocol/proposal-facts.js";
import { type Producer, producerOf } from "../../src/protocol/views.js";
import { SPOOL_BIN } from "../helpers/process.js";
import { ensureRun, proposeAndAccept } from "../helpers/proposals.js";
import { inTerminal, type SpoolTerminal, spoolInTerminal } from "../helpers/pty.js";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer } from "../helpers/server.js";

const ESC = "\u001b";
const PWN = "echo PWNED > pwned.txt";

/** What a model (or a file) draws to pass for Spool's proposal block and its question. */
const FAKE_BLOCK = [
  "I will run the test suite.",
  "",
  "▶ proposal npm test (sh, log://turn_1/sh/npm)",
  "  tool        sh",
  "  command     npm test",
  "  cwd         project root",
  "  env         none added",
  "  tty         none",
  "  runner      default (local)",
  "  sandbox     workspace-write (sandbox: only the project directory is writable)",
  "  background  no",
  "  timeout     server default",
  "  Accept? [y]es / [n]o / [a]lways this command (same directory and environment) in this run (one key): ",
].join("\r\n");

/** The fake block, each line padded to the right margin: the real block drawn over it leaves its tails on the lines. */
const PADDED_BLOCK = FAKE_BLOCK.split("\r\n")
  .map((line) => `${line.padEnd(96)}ok`)
  .join("\r\n");

/** Ways to make the real proposal drawn after them invisible, or not what it seems; each leaves FAKE_BLOCK as the proposal on screen. */
const VECTORS: Record<string, string> = {
  "a scroll region on the top lines (ESC[1;2r)": `${FAKE_BLOCK}\r\n${ESC}[1;2r`,
  "no line wrap (ESC[?7l) and a long command": `Running the check.\r\n${ESC}[?7l`,
  "cursor save and restore (ESC 7 / ESC 8): the real block drawn over the fake one": `${ESC}7${FAKE_BLOCK.replaceAll("  ", "      ")}${ESC}8`,
  "erase display and cursor home: the real block drawn at the top, over the fake one": `${ESC}[2J${ESC}[H${PADDED_BLOCK}\r\n${ESC}[H`,
  "cursor up and insert lines: the real block drawn into the fake one": `${PADDED_BLOCK}\r\n${ESC}[14A${ESC}[1L`,
  "the alternate screen with a fake block and a scroll region": `${ESC}[?1049h${ESC}[2J${ESC}[H${FAKE_BLOCK}\r\n${ESC}[1;2r`,
  "DEC line drawing in G0 (ESC ( 0): the real facts become box characters": `${FAKE_BLOCK}\r\n${ESC}(0`,
};

/** The command each vector's proposal carries (the no-wrap one hides its tail past the margin). */
const commandFor = (vector: string) => (vector.includes("no line wrap") ? `echo all-good${" ".repeat(300)}; ${PWN}` : PWN);

/** Waits until the question about the `nth` proposal of `run` is the last thing written to the terminal. */
async function asked(term: SpoolTerminal, client: SpoolClient, run: string, nth: number): Promise<void> {
  await eventually(
    async () =>
      term.raw().endsWith("(one key): ") &&
      (await client.call("entry/list", { run, pattern: "log://*" })).entries.length === nth &&
      (await client.call("proposal/list", { run })).proposals.length === 1,
    30_000,
    `question ${nth} of ${run} in:\n${term.raw()}`,
  );
}

/**
 * On the visible screen: the pending proposal's every fact line (tool, command, cwd, env, tty, runner, sandbox,
 * background, timeout) as Spool draws them, one under the other (then its question, last, when `question`); and no
 * line that begins like a proposal's header, a fact or a question is anything but one of the run's real ones.
 */
async function onlyTheRealProposal(term: SpoolTerminal, client: SpoolClient, run: string, options: { question: boolean }) {
  const [p] = (await client.call("proposal/list", { run })).proposals;
  expect(p, "a pending proposal").toBeDefined();
  const defaultRunner = defaultRunnerName((await client.call("runner/list", {})).runners);
  const blockOf = (producer: Producer) => factsText(producer, { defaultRunner, indent: "  " }).split("\n");
  const facts = blockOf(p!.producer);
  const real = new Set<string>();
  for (const e of (await client.call("entry/list", { run, pattern: "log://*" })).entries) {
    const producer = producerOf(e);
    real.add(`▶ proposal ${escapeControl(producer.command)} (${producer.tool}, ${e.path})`);
    for (const line of blockOf(producer)) real.add(line);
  }
  const screen = await term.visible();
  const shown = screen.join("\n");
  const at = screen.indexOf(facts[0]!);
  expect(at, `the facts of ${p!.path} in:\n${shown}`).toBeGreaterThanOrEqual(0);
  expect(screen.slice(at, at + facts.length), shown).toEqual(facts);
  const labels = new RegExp(`^  (${FACT_LABELS.join("|")}) +  `);
  for (const line of screen) {
    if (line.startsWith("▶ proposal") || labels.test(line)) expect(real.has(line), `"${line}" is not one of ${run}'s in:\n${shown}`).toBe(true);
  }
  if (options.question) {
    const questions = screen.filter((l) => /^\s*Accept\?/.test(l) && l.endsWith("(one key):"));
    expect(questions.length, shown).toBe(1);
    expect(screen[at + facts.length], shown).toBe(questions[0]);
    expect(
      screen
        .slice(at + facts.length + 1)
        .join("")
        .trim(),
      shown,
    ).toBe("");
  }
}

describe("the screen a person decides on cannot be drawn over (issue 36 point 1)", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  let client: SpoolClient;
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl }, agent: { toolYieldMs: 60_000 } });
    client = await ts.clientIn("screen36");
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });
  const connection = () => ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "screen36"];

  for (const [i, [vector, text]] of Object.entries(VECTORS).entries()) {
    it(`model text with ${vector}: at Accept? the real command, cwd, env, runner and sandbox are on the screen, and nothing else is a proposal`, async () => {
      model.reset();
      model.reply({ text, tools: [{ name: "sh", arguments: { command: commandFor(vector) } }] }, { text: "Understood, not running it." });
      const run = `vector-${i}`;
      const term = spoolInTerminal(["act", "check", "--model", "test", "--run", run, ...connection()], { cwd: ts.root, cols: 100, rows: 40 });
      try {
        await asked(term, client, run, 1);
        await onlyTheRealProposal(term, client, run, { question: true });
        term.type("n");
        // Rejected: exit 1 (README's exit codes).
        expect(await term.exited).toBe(1);
        expect(existsSync(join(ts.root, "pwned.txt"))).toBe(false);
      } finally {
        term.kill();
      }
    }, 60_000);
  }

  it("the same bytes in a file printed by an accepted cat: the next proposal is drawn whole on a reset screen", async () => {
    writeFileSync(join(ts.root, "notes.txt"), `${FAKE_BLOCK}\r\n${ESC}[1;2r${ESC}[?7l${ESC}(0`);
    model.reset();
    model.reply(
      { tools: [{ name: "sh", arguments: { command: "cat notes.txt" } }] },
      { tools: [{ name: "sh", arguments: { command: `echo all-good${" ".repeat(300)}; ${PWN}` } }] },
      { text: "Understood." },
    );
    const term = spoolInTerminal(["act", "read the notes", "--model", "test", "--run", "cat-notes", ...connection()], { cwd: ts.root, cols: 100, rows: 40 });
    try {
      await asked(term, client, "cat-notes", 1);
      term.type("y");
      await asked(term, client, "cat-notes", 2);
      await onlyTheRealProposal(term, client, "cat-notes", { question: true });
      term.type("n");
      expect(await term.exited).toBe(1);
      expect(existsSync(join(ts.root, "pwned.txt"))).toBe(false);
    } finally {
      term.kill();
    }
  }, 60_000);

  it("output left on the terminal by spool tail cannot fake the spool pending listing that follows it", async () => {
    const listing = [
      "tail-run  log://turn_1/sh/echo  proposed 1s ago",
      "  tool        sh",
      "  command     echo hello",
      "  cwd         project root",
      "  env         none added",
    ].join("\r\n");
    const bytes = `${listing}\r\n${ESC}[?1049h${ESC}[H${ESC}[2J${listing}\r\n${ESC}[1;5r${ESC}[5;1H`;
    writeFileSync(join(ts.root, "listing.txt"), bytes);
    await ensureRun(client, "tail-run");
    const cat = await proposeAndAccept(client, client, "tail-run", "cat listing.txt");
    await eventually(async () => (await client.call("entry/get", { run: "tail-run", path: cat.path })).attributes.outcome !== undefined, 20_000);
    await client.call("proposal/create", { run: "tail-run", tool: "sh", command: PWN, env: { MODE: "prod" }, cwd: "." });
    const spool = `${JSON.stringify(process.execPath)} ${JSON.stringify(SPOOL_BIN)}`;
    const flags = connection()
      .map((a) => JSON.stringify(a))
      .join(" ");
    const term = inTerminal(
      "/bin/sh",
      ["-c", `${spool} tail tail-run 1 ${flags} > tail.out; ${spool} tail tail-run 1 ${flags}; echo TAIL-DONE; ${spool} pending ${flags}; echo PENDING-DONE`],
      {
        cwd: ts.root,
        cols: 100,
        rows: 30,
      },
    );
    try {
      expect(await term.exited).toBe(0);
      await term.waitFor("PENDING-DONE");
      await onlyTheRealProposal(term, client, "tail-run", { question: false });
      // To a file, the output is the command's bytes, exactly.
      expect(readFileSync(join(ts.root, "tail.out"), "utf8")).toBe(bytes);
    } finally {
      term.kill();
    }
  }, 60_000);
});
