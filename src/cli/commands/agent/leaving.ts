import { type SpoolClient, SpoolRpcError } from "../../../client/spool-client.js";
import { escapeControl } from "../../common.js";
import { CliError, EXIT, unknownName } from "../../errors.js";

/** An unknown --model, told with the aliases there are and how to define one. */
export async function unknownModel(client: SpoolClient, model: string, error: unknown): Promise<never> {
  const data = error instanceof SpoolRpcError ? (error.data as { model?: unknown } | undefined) : undefined;
  if (!(error instanceof SpoolRpcError) || data?.model !== model) throw error;
  if (error.errorCode !== "INVALID_PARAMS") throw new CliError(`--model ${escapeControl(model)}: ${error.message}`, EXIT.failed);
  const known = (await client.call("model/list", {}).catch(() => ({ models: [] }))).models.map((m) => m.alias);
  const name = model.toUpperCase().replace(/-/g, "_");
  throw unknownName("model", model, known, {
    owner: "the server",
    next:
      `To add it, define it where the server runs, then restart it: SPOOL_MODEL_${name}=openai/<model-id> with OPENAI_API_KEY ` +
      `(or ollama/<model>), or start it with \`spool serve --demo-model\` for the built-in "demo"`,
  });
}

/** Why `spool act` leaves when its connection closes before the run ended: the server stopped (and ended what it ran), or the connection broke. */
export function lostConnection(closed: { code: number; reason: string }, mode: string, run: string): CliError {
  const again = `\`spool ${mode} --run ${escapeControl(run)}\``;
  const why = `${closed.code}${closed.reason ? ` ${escapeControl(closed.reason)}` : ""}`;
  return new CliError(
    closed.code === WS_GOING_AWAY
      ? `the server stopped (${why}) and ended the commands it ran; once it runs again, ${again} shows where the run is`
      : `lost the connection to the server (${why}) — the run stays on the server, and goes on while the server runs; once it answers again, ${again} shows where it is`,
    EXIT.connection,
  );
}

/** The WebSocket close code of a server going away (it is stopping). */
const WS_GOING_AWAY = 1001;
