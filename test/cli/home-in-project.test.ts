import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { startServer } from "../../src/server/server.js";
import { tempDir } from "../helpers/server.js";

/*
 * A home is never inside a project (src/home/in-project.ts): a sandboxed command sees its project whole, so a home
 * made there after the command started (by hand: a second `spool serve` with SPOOL_HOME in the project; the running
 * command read its token) is the command's, and so is a home another registry records. The server refuses such a
 * home before it makes anything in it or reads anything from it.
 */

const start = (home: string, env: NodeJS.ProcessEnv = {}) => startServer({ home, port: 0, env, logger: createLogger("silent") });

describe("a Spool home inside a project", () => {
  it("in a git work tree: refused, saying which project, and nothing is made in it", async () => {
    const project = tempDir("spool-project-");
    mkdirSync(join(project, ".git"));
    const home = join(project, "sub", "home");
    await expect(start(home)).rejects.toThrow(
      new RegExp(`Refusing to start: the Spool home ${home} lies in the project ${project} \\(${project}/\\.git\\)\\. Every sandboxed command`),
    );
    expect(existsSync(join(project, "sub"))).toBe(false);
  });

  it("in a project `spool init` marked, with a config.json a command wrote there first: refused before the config is read", async () => {
    const project = tempDir("spool-project-");
    mkdirSync(join(project, ".spool"));
    writeFileSync(join(project, ".spool", "project.json"), JSON.stringify({ name: "app" }));
    const home = join(project, ".h2");
    mkdirSync(home, { mode: 0o700 });
    // What a command of the project could plant: a plugin the server would run as its user.
    writeFileSync(join(home, "config.json"), JSON.stringify({ plugins: [join(project, "evil.js")] }));
    await expect(start(home)).rejects.toMatchObject({ name: "HomeInProject", message: expect.stringContaining(`${project}/.spool/project.json`) });
    expect(existsSync(join(home, "token"))).toBe(false);
    expect(existsSync(join(home, "spool.db"))).toBe(false);
  });

  it("a project's own .spool as the home: refused too (a client of another home finds the project by it)", async () => {
    const project = tempDir("spool-project-");
    mkdirSync(join(project, ".spool"));
    writeFileSync(join(project, ".spool", "project.json"), JSON.stringify({ name: "app" }));
    await expect(start(join(project, ".spool"))).rejects.toThrow(/lies in the project/);
  });

  it("a dotfiles repository in the home directory is no project a command runs in: ~/.spool starts", async () => {
    const user = tempDir("spool-user-");
    mkdirSync(join(user, ".git"));
    const server = await start(join(user, ".spool"), { HOME: user });
    try {
      expect(existsSync(join(user, ".spool", "token"))).toBe(true);
    } finally {
      await server.stop();
    }
  });

  it("outside every project: starts", async () => {
    const dir = tempDir();
    const server = await start(join(dir, "home"));
    await server.stop();
  });
});
