// Names of config.json's settings that the settings' merge (settings.ts) checks the environment against,
// apart from the schema (schema.ts) so that the merge loads no zod.

/** An entry of `commandEnv`: a variable name, or a pattern with `*`. */
export const COMMAND_ENV_ENTRY = /^[A-Za-z_*][A-Za-z0-9_*]*$/;

/** config.json `sandbox`: the sandbox mode of sh commands (SPEC §7 Runners, "Sandbox modes"). */
export const SANDBOX_SETTINGS = ["auto", "workspace-write", "full"] as const;
export type SandboxSetting = (typeof SANDBOX_SETTINGS)[number];
