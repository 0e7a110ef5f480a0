/**
 * Keeping credentials out of what discovery reports. Every message a source hands to
 * `ctx.error` passes through {@link redact} before it reaches `discovery-error` events, the
 * diagnostics channel, the logger and `stats().lastDiscoveryError` (service/service-discovery.ts,
 * for every source, a custom one too; the kubernetes source also removes its own token literally);
 * a response body is never quoted
 * verbatim — at most a Kubernetes Status `message`, redacted and cut short ({@link describeBody}) —
 * and an answer that should be JSON and is not is described by its size and type only
 * ({@link parseJsonAnswer}).
 */

const PATTERNS: readonly [RegExp, string][] = [
  // Authorization schemes with their credentials: "Bearer abc", "Basic dXNlcjpw…".
  [/\b(Bearer|Basic|Digest|Negotiate)\s+[^\s,;"']+/gi, '$1 [redacted]'],
  // JSON Web Tokens (service-account tokens are JWTs), wherever they appear.
  [/\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*/g, '[redacted]'],
  // A URL's userinfo, "https://user:password@host" or "redis://token@host": all of it, the user too.
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]+@/gi, '$1[redacted]@'],
  // "authorization: …", "cookie=…", "x-api-key: …", "password=…" up to the end of the value.
  [/\b(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api[-_]?key|access[-_]?token|password|passwd|secret|token)(["']?\s*[:=]\s*["']?)[^\s,;"'&]+/gi, '$1$2[redacted]'],
];

/** `text` with anything that looks like a credential replaced by "[redacted]"; `secrets` are removed literally. */
export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  for (const [re, to] of PATTERNS) out = out.replace(re, to);
  return out;
}

const MAX_MESSAGE = 200;

/**
 * What an error response said, fit for an error message: a Kubernetes Status's `reason` and
 * (redacted, at most 200 characters, one line) `message`; for any other body only its size and
 * type — never its text.
 */
export function describeBody(text: string, contentType: string | undefined, secrets: readonly (string | undefined)[] = []): string {
  interface Status {
    kind?: unknown;
    reason?: unknown;
    message?: unknown;
  }
  let status: Status | null = null;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null) status = parsed as Status;
  } catch {
    // not JSON
  }
  if (status?.kind === 'Status' && typeof status.message === 'string') {
    const reason = typeof status.reason === 'string' && /^[A-Za-z]{1,40}$/.test(status.reason) ? `${status.reason}: ` : '';
    const message = redact(status.message, secrets).replace(/\s+/g, ' ').trim();
    return reason + (message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message);
  }
  return `a ${Buffer.byteLength(text)}-byte ${mediaType(contentType)} body, not shown`;
}

/**
 * `text` parsed as JSON; when it is not, throws `<where>: <what> is not JSON (N bytes of <type>,
 * not shown)` — never the parser's own message, which quotes the start of the text (V8:
 * `Unexpected token '<', "<html>upst"... is not valid JSON`).
 */
export function parseJsonAnswer(text: string, contentType: string | undefined, where: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${where}: ${what} is not JSON (${Buffer.byteLength(text)} bytes of ${mediaType(contentType)}, not shown)`);
  }
}

/** A Content-Type's media type, cut short (an attacker-chosen header goes into messages too). */
function mediaType(contentType: string | undefined): string {
  return (contentType || 'unknown type').split(';')[0]!.trim().slice(0, 60) || 'unknown type';
}
