import { core } from "./001_core.js";
import { agent } from "./002_agent.js";
import { dropTurns } from "./003_drop_turns.js";
import { usage } from "./004_usage.js";
import { titlesAndAllowRules } from "./005_titles_and_allow_rules.js";
import { cluster } from "./006_cluster.js";
import { runNumbers } from "./007_run_numbers.js";
import { clusterEventMacs } from "./008_cluster_event_macs.js";
import { allowRuleRunner } from "./009_allow_rule_runner.js";
import { allowRuleSandbox } from "./010_allow_rule_sandbox.js";
import { dropChunksByByte } from "./011_drop_chunks_by_byte.js";
import { dropChunksByLine } from "./012_drop_chunks_by_line.js";
import { principals } from "./013_principals.js";
import { notifyAndAudit } from "./014_notify_and_audit.js";
import { notifyEvents } from "./015_notify_events.js";
import { devices } from "./016_devices.js";
import { pendingShares } from "./017_pending_shares.js";
import { runnerNames } from "./018_runner_names.js";
import { notifyTargetState } from "./019_notify_target_state.js";
import { auditTransport } from "./020_audit_transport.js";
import { pendingCounts } from "./021_pending_counts.js";
import { agentSpend } from "./022_agent_spend.js";
import { notifyBudgetEvent } from "./023_notify_budget_event.js";
import { principalShares } from "./024_principal_shares.js";
import { runnerPools } from "./025_runner_pools.js";
import type { SchemaMigration } from "./columns.js";

export type { Dialect, SchemaMigration } from "./columns.js";

/**
 * The schema's migrations, in the order they run, by the name each is recorded under in `spool_migrations`. The
 * names keep the `.sql` of the files these migrations were until they became TypeScript: a database those files
 * made has them recorded so, and upgrades in place (a name it does not know would stop the migrator).
 * src/store/migrator.ts loads this module at start: from here through tsx or vitest, compiled from dist/migrations
 * (scripts/build.mjs, tsconfig.migrations.json) otherwise. A new migration is a file here and a line below.
 */
export const SCHEMA_MIGRATIONS: Readonly<Record<string, SchemaMigration>> = {
  "001_core.sql": core,
  "002_agent.sql": agent,
  "003_drop_turns.sql": dropTurns,
  "004_usage.sql": usage,
  "005_titles_and_allow_rules.sql": titlesAndAllowRules,
  "006_cluster.sql": cluster,
  "007_run_numbers.sql": runNumbers,
  "008_cluster_event_macs.sql": clusterEventMacs,
  "009_allow_rule_runner.sql": allowRuleRunner,
  "010_allow_rule_sandbox.sql": allowRuleSandbox,
  "011_drop_chunks_by_byte.sql": dropChunksByByte,
  "012_drop_chunks_by_line.sql": dropChunksByLine,
  "013_principals.sql": principals,
  // Migrations written in TypeScript from the start are recorded under their own names.
  "014_notify_and_audit": notifyAndAudit,
  "015_notify_events": notifyEvents,
  "016_devices": devices,
  "017_pending_shares": pendingShares,
  "018_runner_names": runnerNames,
  "019_notify_target_state": notifyTargetState,
  "020_audit_transport": auditTransport,
  "021_pending_counts": pendingCounts,
  "022_agent_spend": agentSpend,
  "023_notify_budget_event": notifyBudgetEvent,
  "024_principal_shares": principalShares,
  "025_runner_pools": runnerPools,
};
