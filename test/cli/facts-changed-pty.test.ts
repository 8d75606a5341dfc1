import { expect, it } from "vitest";
import { describeWithInfra } from "../helpers/infra.js";
import { movedProposal } from "../helpers/moved-proposal.js";
import { spoolInTerminal } from "../helpers/pty.js";

/**
 * `spool act`'s question (src/cli/commands/agent) sends the facts revision it showed with an accept: a proposal shown with
 * server A's runner, whose server stops before the answer, is moved to B's runner (revision 2). The person's "y" on
 * the old facts is refused (FACTS_CHANGED), nothing runs; the new facts are shown and asked about, and only the
 * second "y" runs it, on B. Two real servers on PostgreSQL, the CLI in a real terminal.
 */
describeWithInfra("postgres", "spool act: an accept on facts that changed is refused and asked again on the new facts", () => {
  const moved = movedProposal("facts-act");

  it("the y given on local@A's facts does not run it on local@B: the new facts are shown, a second y runs it", async () => {
    const { b, root } = await moved.start();
    const path = await moved.propose("moved", "echo ran-here");
    const term = spoolInTerminal(["act", "--run", "moved", "--server", b.server.url, "--token-file", b.server.config.tokenFile, "--project", "team"], {
      cwd: root,
      cols: 200,
      rows: 60,
    });
    const asked = () => term.raw().match(/Accept\?/g)?.length ?? 0;
    await term.waitFor(/Accept\?/, "the question on the first facts", 30_000);
    expect(term.raw()).toContain(`default (${moved.runnerA()}; that server's own runner)`);

    // A stops before the answer: B takes the proposal for its own runner, revision 2.
    await moved.move(path);
    term.type("y");
    await term.waitFor("not accepted: ", "the refusal", 30_000);
    await term.waitFor(/Accept\?[\s\S]*Accept\?/, "the question asked again", 30_000);
    expect(asked()).toBe(2);
    const again = term.raw().slice(term.raw().indexOf("not accepted: "));
    expect(again).toContain("facts revision 2");
    expect(again).toContain(`default (${moved.runnerB()}; that server's own runner)`);
    expect(await moved.pending("moved", path)).toBe(true);

    term.type("y");
    await term.waitFor("accepted, running on", "the accept on the new facts", 30_000);
    expect(await moved.ran("moved", path)).toEqual({ server: moved.runnerB(), out: "ran-here\n" });
    term.kill();
  }, 120_000);
});
