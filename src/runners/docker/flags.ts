import { type BackendRow, stringFlag } from "../flags.js";

/** The Docker backend's row of src/runners/backends.ts: a fresh container per command, or an exec in a running one. */
export const DOCKER = {
  flags: {
    image: {
      type: "string",
      arg: "IMAGE",
      help: `a fresh container per command (removed afterwards); the
project root is mounted into it at the same path (or at
--root): read-write for sh, read-only for env commands`,
      heading: " docker:",
    },
    "no-mount": {
      type: "boolean",
      help: `do not mount the project root (commands start in the
image's WORKDIR, or in --root)`,
    },
    container: {
      type: "string",
      arg: "NAME",
      help: `or exec inside this running container (it keeps its own
mounts)`,
    },
    network: { type: "string", arg: "NAME", help: "network for fresh containers                  [none]" },
  },
  async build(values, common) {
    const image = stringFlag(values, "image");
    const container = stringFlag(values, "container");
    if (!image === !container) throw new Error("--backend docker needs exactly one of --image or --container");
    const { DockerBackend } = await import("./docker.js");
    return new DockerBackend({
      ...(image ? { image } : { container: container! }),
      network: stringFlag(values, "network"),
      killGraceMs: common.killGraceMs,
      sandbox: common.sandbox,
      mountProject: Boolean(image) && !values["no-mount"],
      ...(common.root ? { mountAt: common.root } : {}),
    });
  },
} as const satisfies BackendRow;
