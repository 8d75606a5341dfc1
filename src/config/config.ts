import { readConfigFile } from "./file.js";
import { LimitsSchema } from "./schema.js";
import { type ConfigOverrides, configPaths, type Limits, type SpoolConfig, settingsFrom } from "./settings.js";

export { ConfigFileSchema, LimitsSchema, PER_PRINCIPAL_LIMITS, SANDBOX_SETTINGS, type SandboxSetting } from "./schema.js";
export * from "./settings.js";
export { readConfigFile };

/** Limits that must agree with each other: a read the server allows must fit the cap on reads in flight. */
function checkedLimits(file: string, limits: Limits): Limits {
  for (const other of ["maxReadBytes", "maxChunkBytes"] as const) {
    if (limits.maxReadBytesInFlight < limits[other]) {
      throw new Error(
        `${file}: "limits.maxReadBytesInFlight" must be at least limits.${other} (${limits[other]}): a read of that size could never go, got ${limits.maxReadBytesInFlight}`,
      );
    }
  }
  return limits;
}

/** The settings `spool serve` runs with: config.json read and checked (src/config/file.ts), merged (src/config/settings.ts). */
export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): SpoolConfig {
  const paths = configPaths(overrides, env);
  return settingsFrom(paths, readConfigFile(paths.configPath), overrides, env, (fileLimits) =>
    checkedLimits(paths.configPath, LimitsSchema.parse({ ...fileLimits, ...overrides.limits })),
  );
}
