/*
 * Where an accepted command may run, as every end names it: one runner by its name, a pool the server's
 * configuration defines, or any runner whose labels include a selector's. Plain TypeScript with no zod: the web
 * page bundles it (the schemas are in pools.ts).
 */

/** Where a proposal (or its accept) sends a command: a runner, a configured pool, or runners with these labels. */
export type RunnerTarget = { kind: "runner"; name: string } | { kind: "pool"; name: string } | { kind: "labels"; labels: Readonly<Record<string, string>> };

/** What `runner` holds in proposal/create and run/resolve: a runner's name, `{pool}` or `{labels}`. */
export type RunnerRefValue = string | { pool: string } | { labels: Record<string, string> };

/** The target a `runner` param names. */
export function targetOf(ref: RunnerRefValue): RunnerTarget {
  if (typeof ref === "string") return { kind: "runner", name: ref };
  if ("pool" in ref) return { kind: "pool", name: ref.pool };
  return { kind: "labels", labels: ref.labels };
}

/** `os=linux,arch=arm64`: a label selector in one canonical spelling (keys sorted; keys and values hold no `=` or `,`). */
export function labelsText(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((key) => `${key}=${labels[key]}`)
    .join(",");
}

/**
 * The queue's name for a target, one spelling each: `runner:NAME`, `pool:NAME`, `labels:k=v,…`. Commands queued
 * under one key wait in one line, in the order they were accepted.
 */
export function targetKey(target: RunnerTarget): string {
  if (target.kind === "labels") return `labels:${labelsText(target.labels)}`;
  return `${target.kind}:${target.name}`;
}

/** How people read a queue key: `runner build-1`, `pool linux`, `labels os=linux,arch=arm64`. */
export function keyWords(key: string): string {
  const colon = key.indexOf(":");
  return colon < 0 ? key : `${key.slice(0, colon)} ${key.slice(colon + 1)}`;
}

/** Whether a runner's labels include every label of a selector. */
export function labelsMatch(runner: Readonly<Record<string, string>>, selector: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector)) if (!Object.hasOwn(runner, key) || runner[key] !== value) return false;
  return true;
}
