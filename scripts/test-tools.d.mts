// Types of test-tools.mjs (plain JavaScript: scripts/test-infra.sh runs it before `npm ci`).
interface TestTool {
  /** Its directory under the test cache. */
  dir: string;
  /** The npm packages installed together. */
  packages: string[];
  /** The files the tests run, under the directory's node_modules. */
  files: Record<string, string>;
}
export declare const TEST_TOOLS: {
  acpx: TestTool & { files: { cli: string; node: string } };
  acpxOld: TestTool & { files: { cli: string } };
  conformance: TestTool & { files: { cli: string; node: string } };
  inspector: TestTool & { files: { cli: string; node: string } };
  /** A whole Node of each line package.json's engines names, with its headers (`include/node`) for node-gyp. */
  node20: TestTool & { files: { node: string; headers: string } };
  node22: TestTool & { files: { node: string; headers: string } };
  node24: TestTool & { files: { node: string; headers: string } };
};
export type TestToolName = keyof typeof TEST_TOOLS;
/** The directory the tools are installed under (SPOOL_TEST_CACHE, default ~/.cache/spool-test). */
export declare function toolCache(): string;
/** The absolute paths of a tool's files (they may not exist yet). */
export declare function toolPaths<N extends TestToolName>(name: N): { [K in keyof (typeof TEST_TOOLS)[N]["files"]]: string };
/** Installs a tool unless its files are there: null when it is ready, else why it is not. */
export declare function installTool(name: TestToolName): Promise<string | null>;
