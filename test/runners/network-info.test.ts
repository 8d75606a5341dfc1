import { describe, expect, it } from "vitest";
import { DockerBackend } from "../../src/runners/docker/docker.js";
import type { DockerEngine } from "../../src/runners/docker/engine.js";

/**
 * What a runner's sandbox info says of a sandboxed command's network (the `network` fact of its proposals): a Docker
 * runner's fresh containers take the network mode it was given. The probe of a fresh-container runner asks the engine
 * nothing, so an engine that refuses every call shows it is read from the options alone.
 */
const noEngine = new Proxy({} as DockerEngine, {
  get: () => () => Promise.reject(new Error("no engine in this test")),
});

describe("a Docker runner's network, as runner/list tells it", () => {
  it("none by default, the host's with --network host, a namespace of the container's own otherwise", async () => {
    const network = async (mode?: string) =>
      (await new DockerBackend({ image: "debian", engine: noEngine, ...(mode ? { network: mode } : {}) }).sandbox()).network;
    expect(await network()).toBe("none");
    expect(await network("none")).toBe("none");
    expect(await network("host")).toBe("shared");
    expect(await network("bridge")).toBe("own");
  });
});
