import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { validate as validateDeployment } from "kubernetes-models/_schemas/IoK8sApiAppsV1Deployment";
import { validate as validateNetworkPolicy } from "kubernetes-models/_schemas/IoK8sApiNetworkingV1NetworkPolicy";
import { describe, expect, it } from "vitest";
import { type Manifest, RUNNER_MANIFESTS, runnerManifests } from "../helpers/kubernetes.js";

/*
 * deploy/kubernetes/runner.yaml against Kubernetes' own schemas: the kubernetes-models package's validators, generated
 * from the Kubernetes API's published OpenAPI document (v1.34: the types, required fields, enumerations and formats
 * of apps/v1 Deployment and networking.k8s.io/v1 NetworkPolicy). Then what the manifests promise about the runner: it
 * dials out (no port, no Service), runs as non-root with nothing to escalate, takes its credential from a Secret,
 * drains on termination, and its pods reach the Spool server and DNS only.
 */

const root = fileURLToPath(new URL("../..", import.meta.url));
const file = RUNNER_MANIFESTS;

const VALIDATORS: Record<string, ((data: unknown) => boolean) & { errors?: unknown }> = {
  "apps/v1 Deployment": validateDeployment,
  "networking.k8s.io/v1 NetworkPolicy": validateNetworkPolicy,
};

/** Kubernetes' schema errors for one manifest, as "path message" lines; a kind with no schema here is an error. */
function schemaErrors(manifest: Manifest): string[] {
  const validate = VALIDATORS[`${manifest.apiVersion} ${manifest.kind}`];
  if (!validate) return [`no schema for ${manifest.apiVersion} ${manifest.kind}`];
  if (validate(manifest)) return [];
  // The compiled validators carry no messages: the keyword and its parameters say what failed.
  return ((validate.errors ?? []) as { instancePath: string; keyword: string; params: object }[]).map(
    (e) => `${e.instancePath || "/"} ${e.keyword} ${JSON.stringify(e.params)}`,
  );
}

const byKind = (manifests: Manifest[], kind: string, name?: string) => {
  const found = manifests.find((m) => m.kind === kind && (name === undefined || m.metadata?.name === name));
  if (!found) throw new Error(`${file} has no ${kind}${name ? ` ${name}` : ""}`);
  return found;
};

describe(`${file}`, () => {
  const manifests = runnerManifests();
  const deployment = byKind(manifests, "Deployment");
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];

  it("every document passes Kubernetes' schema for its kind", () => {
    expect(manifests.map((m) => `${m.kind} ${m.metadata?.name}`)).toEqual([
      "Deployment spool-runner",
      "NetworkPolicy spool-runner",
      "NetworkPolicy spool-runner-egress-targets",
    ]);
    for (const manifest of manifests) expect(schemaErrors(manifest), `${manifest.kind} ${manifest.metadata?.name}`).toEqual([]);
  });

  it("a broken manifest fails the schema: the check can fail", () => {
    const broken = (change: (copy: Manifest) => void, kind = "Deployment") => {
      const copy = structuredClone(byKind(manifests, kind));
      change(copy);
      return schemaErrors(copy);
    };
    expect(broken((d) => (d.spec.replicas = "two"))).toContainEqual(expect.stringMatching(/^\/spec\/replicas type \{"type":"integer"\}/));
    expect(broken((d) => delete d.spec.selector)).toContainEqual(expect.stringMatching(/^\/spec required \{"missingProperty":"selector"\}/));
    expect(broken((d) => delete d.spec.template.spec.containers[0].name)).toContainEqual(
      expect.stringMatching(/containers\/0 required \{"missingProperty":"name"\}/),
    );
    expect(broken((d) => (d.spec.template.spec.containers[0].resources.requests.cpu = { cores: 1 }))).not.toEqual([]);
    expect(broken((d) => (d.spec.template.spec.securityContext.runAsNonRoot = "yes"))).toContainEqual(
      expect.stringMatching(/runAsNonRoot type \{"type":"boolean"\}/),
    );
    expect(broken((d) => (d.kind = "Deployments"))).not.toEqual([]);
    expect(broken((p) => (p.spec.egress[0].ports[0].port = [7420]), "NetworkPolicy")).not.toEqual([]);
    expect(broken((p) => (p.spec.egress = { to: [] }), "NetworkPolicy")).toContainEqual(expect.stringMatching(/^\/spec\/egress type \{"type":"array"\}/));
    // YAML that is not YAML fails before any schema.
    expect(() => runnerManifests("kind: Deployment\n  metadata: [")).toThrow(/runner.yaml/);
  });

  it("the runner dials out: no container port, no Service, nothing may connect to it", () => {
    expect(container.ports).toBeUndefined();
    expect(manifests.some((m) => m.kind === "Service")).toBe(false);
    const policy = byKind(manifests, "NetworkPolicy", "spool-runner");
    // It selects the Deployment's pods.
    expect(deployment.spec.template.metadata.labels).toMatchObject(policy.spec.podSelector.matchLabels);
    expect(policy.spec.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(policy.spec.ingress).toEqual([]);
    // Egress: the Spool server's port, and DNS on 53 to the cluster's resolver; nothing else.
    expect(policy.spec.egress.map((rule: Manifest) => rule.ports.map((p: Manifest) => `${p.protocol}/${p.port}`).join(","))).toEqual([
      "TCP/7420",
      "UDP/53,TCP/53",
    ]);
    for (const rule of policy.spec.egress) for (const to of rule.to) expect(to.ipBlock?.cidr).not.toBe("0.0.0.0/0");
    // The egress targets' knob adds nothing as shipped.
    expect(byKind(manifests, "NetworkPolicy", "spool-runner-egress-targets").spec.egress).toEqual([]);
    // The server's address in the env is the one the policy's first rule lets through (its port).
    const server = container.env.find((e: Manifest) => e.name === "SPOOL_SERVER").value as string;
    expect(new URL(server).port).toBe(String(policy.spec.egress[0].ports[0].port));
  });

  it("non-root with nothing to escalate, its credential from a Secret, resources requested and limited", () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: "RuntimeDefault" } });
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    const tokenFile = container.env.find((e: Manifest) => e.name === "SPOOL_TOKEN_FILE").value as string;
    const mount = container.volumeMounts.find((m: Manifest) => tokenFile.startsWith(`${m.mountPath}/`));
    expect(mount).toMatchObject({ readOnly: true });
    expect(pod.volumes.find((v: Manifest) => v.name === mount.name).secret).toMatchObject({ secretName: "spool-runner-credential" });
    // No credential in the manifest itself.
    expect(JSON.stringify(manifests)).not.toMatch(/spool_[0-9a-f]{16}_/);
    for (const kind of ["requests", "limits"]) expect(Object.keys(container.resources[kind]).sort()).toEqual(["cpu", "ephemeral-storage", "memory"]);
    // What the runner writes is on volumes of its own (the root filesystem is read-only).
    expect(container.volumeMounts.map((m: Manifest) => m.mountPath).sort()).toEqual(["/home/spool", "/tmp", "/var/run/spool/credential", "/workspace"]);
  });

  it("drains on termination: preStop drains it, SIGTERM waits for its commands (--drain-on-term), within the grace", () => {
    expect(container.args.slice(0, 1)).toEqual(["runner"]);
    expect(container.args).toContain("--drain-on-term");
    expect(container.lifecycle.preStop.exec.command.join(" ")).toMatch(/spool runners drain "\$POD_NAME"/);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(600);
    // Each pod attaches under its own name, the pod's.
    expect(container.args[container.args.indexOf("--name") + 1]).toBe("$(POD_NAME)");
    expect(container.env.find((e: Manifest) => e.name === "POD_NAME").valueFrom.fieldRef.fieldPath).toBe("metadata.name");
  });

  it("names the image the recipe tags (spool-runner:VERSION)", () => {
    const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
    expect(container.image).toBe(`spool-runner:${version}`);
  });
});
