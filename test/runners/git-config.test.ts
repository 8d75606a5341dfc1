import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
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
