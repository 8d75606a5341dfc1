import type { Tracer } from "@opentelemetry/api";
import { SERVER_VERSION } from "../version.js";

export interface Tracing {
  tracer: Tracer;
  /** Sends what is still buffered, then stops. */
  shutdown(): Promise<void>;
}

/**
 * OpenTelemetry's SDK and exporter, set up only when the environment asks for traces (OTEL_EXPORTER_OTLP_ENDPOINT
 * or OTEL_TRACES_EXPORTER, as every OpenTelemetry SDK reads them): otherwise nothing of them is loaded, and the
 * server has no tracer at all. OTEL_TRACES_EXPORTER: otlp (the default; OTLP over HTTP, the exporter reads the
 * OTEL_EXPORTER_OTLP_* variables), console, or none.
 */
export async function startTracing(env: NodeJS.ProcessEnv): Promise<Tracing | null> {
  const exporterName = env.OTEL_TRACES_EXPORTER?.trim() || (env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? "otlp" : "");
  if (exporterName === "" || exporterName === "none") return null;
  if (exporterName !== "otlp" && exporterName !== "console")
    throw new Error(`OTEL_TRACES_EXPORTER must be otlp, console or none (Spool's exporters), got "${env.OTEL_TRACES_EXPORTER}"`);
  const { TracerProvider, BatchSpanProcessor, ConsoleSpanExporter } = await import("@opentelemetry/sdk-trace");
  const { resourceFromAttributes } = await import("@opentelemetry/resources");
  // The endpoint from the environment given (the server's, which tests set); the exporter reads the rest (headers, timeout) itself.
  const url =
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || (env.OTEL_EXPORTER_OTLP_ENDPOINT ? `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, "")}/v1/traces` : undefined);
  const exporter =
    exporterName === "console"
      ? new ConsoleSpanExporter()
      : new (await import("@opentelemetry/exporter-trace-otlp-http")).OTLPTraceExporter(url ? { url } : {});
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": env.OTEL_SERVICE_NAME || "spool", "service.version": SERVER_VERSION }),
    spanProcessors: [new BatchSpanProcessor({ exporter })],
  });
  return { tracer: provider.getTracer("spool", SERVER_VERSION), shutdown: () => provider.shutdown() };
}
