import { describe, expect, it } from "vitest";
import { fullAcceptorsText, mayAcceptFull } from "../../src/protocol/full-acceptors.js";
import { factValue, proposalFacts } from "../../src/protocol/proposal-facts.js";

describe("who may accept a command without a sandbox", () => {
  const admin = { name: "admin", role: "admin" as const, projects: null };
  const person = { name: "pat", role: "person" as const, projects: null };
  const scopedAdmin = { name: "sam", role: "admin" as const, projects: ["app"] };
  const agent = { name: "bot", role: "agent" as const, projects: null };

  it("by default an unscoped admin, never a scoped one nor a person", () => {
    expect(mayAcceptFull(admin, ["admin"])).toBe(true);
    expect(mayAcceptFull(person, ["admin"])).toBe(false);
    expect(mayAcceptFull(scopedAdmin, ["admin"])).toBe(false);
  });

  it("person lets every unscoped person and admin; a named principal only while unscoped and able to decide; [] nobody", () => {
    expect(mayAcceptFull(person, ["person"])).toBe(true);
    expect(mayAcceptFull(admin, ["person"])).toBe(true);
    expect(mayAcceptFull({ ...person, projects: ["app"] }, ["person", "principal:pat"])).toBe(false);
    expect(mayAcceptFull(person, ["principal:pat"])).toBe(true);
    expect(mayAcceptFull(admin, ["principal:pat"])).toBe(false);
    expect(mayAcceptFull(agent, ["person", "principal:bot"])).toBe(false);
    expect(mayAcceptFull(admin, [])).toBe(false);
  });

  it("says who in words, the same on every client", () => {
    expect(fullAcceptorsText(["admin"])).toBe("an unscoped admin");
    expect(fullAcceptorsText(["admin", "person"])).toBe("an unscoped person or admin");
    expect(fullAcceptorsText(["admin", "principal:pat", "principal:kim"])).toBe("an unscoped admin, pat (unscoped) or kim (unscoped)");
    expect(fullAcceptorsText([])).toBe("nobody here");
    const facts = (fullAcceptors: string[]) => proposalFacts({ tool: "sh", command: "x", sandbox: "full", fullAcceptors });
    expect(factValue(facts(["admin"]), "sandbox")).toMatch(/^full \(no sandbox: .*; only an unscoped admin may accept it\)$/);
    expect(factValue(facts([]), "sandbox")).toMatch(/; nobody here may accept it\)$/);
    expect(factValue(facts(["principal:a\u001bb"]), "sandbox")).toContain("only a\\eb (unscoped) may accept it");
  });
});
