import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { expect, it } from "vitest";
import { gitReader, namedByConfig } from "../../src/runners/sandbox/git-config.js";

/**
 * What a repository's config names that git runs (src/runners/sandbox/git-config.ts), as git reads the file: the
 * values git runs as a command beyond the usual ones (a proxy, trailer and submodule commands, send-email's and imap's
 * programs, a local remote's upload-pack, git archive's filters, the ssh signing key command), a section written the
 * old way (`[gpg.ssh]`), and a value that goes on over lines ending in a backslash. Each program inside the work tree
 * is named; a word without a `/` (a program found on PATH) is not.
 */
it("names the programs of every value git runs as a command, old-style sections and continued lines included", () => {
  const worktree = mkdtempSync(join(tmpdir(), "spool-git-config-"));
  const gitDir = join(worktree, ".git");
  mkdirSync(gitDir);
  writeFileSync(
    join(gitDir, "config"),
    [
      "[core]",
      "\tgitProxy = bin/proxy.sh",
      '[trailer "sign"]',
      "\tcmd = bin/trailer.sh",
      '[submodule "lib"]',
      "\tupdate = !bin/update.sh --quiet",
      "[sendemail]",
      "\tsmtpServer = bin/sendmail",
      "\ttoCmd = bin/to.sh",
      "[imap]",
      "\ttunnel = bin/tunnel.sh imap.example",
      '[remote "local"]',
      "\turl = ../other",
      "\tuploadpack = bin/upload.sh",
      '[tar "tar.xz"]',
      "\tcommand = bin/xz.sh -c",
      "[gpg.ssh]",
      "\tdefaultKeyCommand = bin/key.sh",
      "[alias]",
      "\tlong = !echo start && \\",
      "\t\tbin/continued.sh",
      "[core]",
      "\tpager = less",
      "",
    ].join("\n"),
  );
  const named = namedByConfig(gitDir, worktree, gitReader(undefined, {}));
  expect(named.map((n) => `${n.what} ${relative(worktree, n.path)}`).sort()).toEqual(
    [
      "bin/proxy.sh",
      "bin/trailer.sh",
      "bin/update.sh",
      "bin/sendmail",
      "bin/to.sh",
      "bin/tunnel.sh",
      "bin/upload.sh",
      "bin/xz.sh",
      "bin/key.sh",
      "bin/continued.sh",
    ]
      .map((path) => `program ${path}`)
      .sort(),
  );
});

/**
 * Fourth review of the reading: git does not continue a comment over a backslash, nor a value after its `#` comment,
 * and `\\` at a line's end is an escaped backslash; a quoted subsection may hold `]`; hooks set in config run their
 * command; a nested repository's `..` hooks directory and programs are in the project; a hooks path that is a link to
 * the work tree is its hooks, not the whole tree.
 */
it("reads comments, escapes and quoted subsections as git does; names hooks by name where the hooks directory holds the work tree", () => {
  const project = mkdtempSync(join(tmpdir(), "spool-git-config-"));
  const worktree = join(project, "sub");
  const gitDir = join(worktree, ".git");
  mkdirSync(gitDir, { recursive: true });
  writeFileSync(
    join(gitDir, "config"),
    [
      "[core]",
      "\t# old: C:\\tools\\",
      "\tfsmonitor = ./planted-fsmon",
      "\teditor = vim # mine \\",
      "\tpager = ./planted-pager",
      "\tsshCommand = C:\\\\",
      "\taskPass = ./planted-askpass",
      "\thooksPath = ..",
      '[remote "x]"] uploadpack = ./planted-upload',
      '[hook "lint"]',
      "\tevent = pre-commit",
      "\tcommand = ../lint-bin/lint.sh",
      "",
    ].join("\n"),
  );
  const named = namedByConfig(gitDir, worktree, gitReader(undefined, {}));
  const shown = named.map((n) => `${n.what} ${relative(project, n.path)}`);
  expect(shown.filter((line) => line.startsWith("program")).sort()).toEqual(
    ["sub/planted-askpass", "sub/planted-fsmon", "sub/planted-pager", "sub/planted-upload", "lint-bin/lint.sh"].map((p) => `program ${p}`).sort(),
  );
  expect(shown).toContain("hook pre-commit");
  expect(shown).toContain("hook post-checkout");
  expect(shown.some((line) => line.startsWith("hooks directory"))).toBe(false);

  // A hooks path that is a link to the work tree: its hooks by name, never the whole tree.
  const linked = join(project, "linked");
  mkdirSync(join(linked, ".git"), { recursive: true });
  symlinkSync(".", join(linked, "hooks"));
  writeFileSync(join(linked, ".git/config"), "[core]\n\thooksPath = hooks\n");
  const viaLink = namedByConfig(join(linked, ".git"), linked, gitReader(undefined, {}));
  expect(viaLink.every((n) => n.what === "hook")).toBe(true);
  expect(viaLink.map((n) => relative(linked, n.path))).toContain("hooks/pre-commit");
});
