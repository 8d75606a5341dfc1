import { installTool, toolPaths } from "../../scripts/test-tools.mjs";

/** acpx 0.19 and the Node 22 it runs on, in the test cache (scripts/test-tools.mjs; installed by test-infra.sh up). */
const acpx = toolPaths("acpx");
export const ACPX = acpx.cli;
export const NODE22 = acpx.node;

/** Installs acpx and Node 22 unless they are there; the reason when that cannot be done, else null. */
export const installAcpx = (): Promise<string | null> => installTool("acpx");

/** acpx 0.1.15, the newest that runs on Node 20 (this one), in the same cache. */
export const ACPX_0_1 = toolPaths("acpxOld").cli;

/** Installs acpx 0.1.15 unless it is there; the reason when that cannot be done, else null. */
export const installAcpx01 = (): Promise<string | null> => installTool("acpxOld");
