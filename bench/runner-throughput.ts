// End-to-end throughput: a local process writes N MB to stdout; the runner
// streams it into the server, which stores it in SQLite. Timed from the accept
// to the channel's terminal status. Runs through the embedded runner (in the
// server process) and through an attached `spool runner --backend local`
// process over loopback WebSocket.
// Usage: npx tsx bench/runner-throughput.ts [MB] [embedded,attached]
import { machine, startRunnerProcess, startServerProcess } from "./common.js";

const mb = Number(process.argv[2] ?? 256);
const modes = (process.argv[3] ?? "embedded,attached").split(",");
const bytes = mb * 1024 * 1024;

const server = await startServerProcess();
console.log(`machine: ${machine()}`);
console.log(`${mb} MB of text lines from \`yes | head -c\` into one stored channel`);
console.log("runner     MB/s    seconds  stored_bytes");
const client = await server.connect();
await client.initialize("bench", { root: server.root });
try {
  for (const mode of modes) {
    const name = mode === "attached" ? "attached-local" : "local";
    const runner = mode === "attached" ? await startRunnerProcess(server, "bench", name, ["--backend", "local"]) : null;
    const run = `throughput-${mode}`;
    await client.request("run/create", { alias: run });
    const { path } = await client.request("proposal/create", { run, tool: "sh", command: `yes 'spool runner throughput line of text' | head -c ${bytes}` });
    // The end is the producer's stream/finished, not polling (entry/get calls would cost the server CPU meanwhile).
    let finished!: () => void;
    const ended = new Promise<void>((resolve) => (finished = resolve));
    const off = client.on("stream/finished", (n: { path: string }) => n.path === path && finished());
    const start = performance.now();
    const resolved = await client.request("run/resolve", { run, path, decision: "accept", runner: name });
    const channel = resolved.channels[0].path;
    await ended;
    off();
    let entry: { status: number; bytes: number };
    while ((entry = await client.request("entry/get", { run, path: channel, tail: 1 })).status === 102) await new Promise((r) => setTimeout(r, 20));
    const seconds = (performance.now() - start) / 1000;
    console.log([mode.padEnd(9), (mb / seconds).toFixed(1).padEnd(6), seconds.toFixed(2).padEnd(7), String(entry.bytes)].join("  "));
    if (entry.bytes !== bytes || entry.status !== 200) throw new Error(`expected ${bytes} bytes at 200, got ${entry.bytes} at ${entry.status}`);
    runner?.kill("SIGTERM");
  }
} finally {
  client.close();
  await server.stop();
}
