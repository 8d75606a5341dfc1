import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const root = fileURLToPath(new URL("../..", import.meta.url));
export const RUNNER_MANIFESTS = "deploy/kubernetes/runner.yaml";

// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped YAML, read field by field
export type Manifest = Record<string, any>;

/** The YAML documents of deploy/kubernetes/runner.yaml (or of `text`), each as a plain object; a YAML error throws. */
export function runnerManifests(text = readFileSync(join(root, RUNNER_MANIFESTS), "utf8")): Manifest[] {
  return parseAllDocuments(text).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${RUNNER_MANIFESTS}: ${doc.errors.map((e) => e.message).join("; ")}`);
    return doc.toJS() as Manifest;
  });
}

/** The runner container of the manifests' Deployment. */
export function runnerContainer(manifests: Manifest[] = runnerManifests()): Manifest {
  const deployment = manifests.find((m) => m.kind === "Deployment");
  if (!deployment) throw new Error(`${RUNNER_MANIFESTS} has no Deployment`);
  return deployment.spec.template.spec.containers[0];
}
