/**
 * OpenTelemetry's context propagation, when the application uses it (`@opentelemetry/api` is an
 * optional peer, loaded by the first inbound entry point with a dynamic import). Active means a
 * global propagator is set: `propagation.fields()` names the headers it writes (`traceparent`
 * and `tracestate` for W3C trace context, `baggage`, `b3`…). Those headers are then
 * OpenTelemetry's to write, never copied from the incoming request on top of what it writes:
 *  - with OpenTelemetry's undici instrumentation loaded (a subscriber on undici's
 *    `undici:request:create` diagnostics channel), it injects them into every request itself,
 *    from the active context — meshlet adds none of them;
 *  - without it, meshlet injects them from the active context (`propagation.inject`), the span
 *    the application is in when it makes the call; when that writes nothing (no span is active:
 *    the server is not traced), the incoming request's values are copied instead.
 */
import diagnostics from 'node:diagnostics_channel';

/** The parts of `@opentelemetry/api` used here. */
interface OtelApi {
  readonly propagation: { fields(): string[]; inject(context: unknown, carrier: Record<string, string>): void };
  readonly context: { active(): unknown };
}

/** undefined until the import settled; null when the package is not installed. */
let api: OtelApi | null | undefined;
let loading: Promise<void> | null = null;
const undiciRequests = diagnostics.channel('undici:request:create');

/** Look for `@opentelemetry/api` once; resolves when the look settled (never rejects). */
export function loadOtel(): Promise<void> {
  return (loading ??= import('@opentelemetry/api').then(
    (m) => {
      api = ((m as { default?: OtelApi }).default ?? m) as OtelApi;
    },
    () => {
      api = null;
    },
  ));
}

/**
 * The headers OpenTelemetry's global propagator writes, lower-case; empty while the package is
 * absent (or not loaded yet) or no propagator is set. A propagator that throws counts as none.
 */
export function otelFields(): readonly string[] {
  if (api == null) return [];
  try {
    const fields = api.propagation.fields();
    return fields.length === 0 ? fields : fields.map((f) => f.toLowerCase());
  } catch {
    return [];
  }
}

/** True when something — OpenTelemetry's undici instrumentation — adds headers to each undici request as it is made. */
export function undiciInstrumented(): boolean {
  return undiciRequests.hasSubscribers;
}

/** The headers the propagator writes for the active context (names lower-case); empty when it writes none or throws. */
export function otelInject(): Record<string, string> {
  const carrier: Record<string, string> = {};
  if (api == null) return carrier;
  try {
    api.propagation.inject(api.context.active(), carrier);
  } catch {
    return {};
  }
  for (const k of Object.keys(carrier)) {
    const lower = k.toLowerCase();
    if (lower !== k) {
      carrier[lower] = carrier[k]!;
      delete carrier[k];
    }
  }
  return carrier;
}
