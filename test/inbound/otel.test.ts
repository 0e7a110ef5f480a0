// With OpenTelemetry's context propagation active (issue 14 §3), meshlet works with it: the
// propagator's fields come from the active context (a child span's traceparent), are never
// copied on top of it, are copied from the incoming request only when no span is active, and
// are left alone entirely when OpenTelemetry's undici instrumentation injects them itself.
// The real @opentelemetry/api, with a small W3C propagator and an AsyncLocalStorage context
// manager written here (the SDK packages are not dependencies).
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import { context, propagation, trace, type Context, type ContextManager, type TextMapPropagator, ROOT_CONTEXT, TraceFlags } from '@opentelemetry/api';
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import { createMesh, type Mesh } from '../../src/index.js';
import { startBackend, type Backend } from '../support/backend.js';
import { httpRequest } from '../support/http-client.js';
import { serve, type Served } from '../support/inbound.js';

class AlsContextManager implements ContextManager {
  readonly #als = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#als.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.#als.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    return this;
  }
}

const w3c: TextMapPropagator = {
  inject(ctx, carrier, setter) {
    const sc = trace.getSpanContext(ctx);
    if (sc === undefined || !trace.isSpanContextValid(sc)) return;
    setter.set(carrier, 'traceparent', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags}`);
  },
  extract: (ctx) => ctx,
  fields: () => ['traceparent', 'tracestate'],
};

const INCOMING = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'congo=t61rcWkgMzE', b3: '0af7651916cd43dd-b7ad6b7169203331-1' };
const CHILD = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED };

let leaf: Backend;
let mesh: Mesh;
let front: Served;
let inSpan = true;

beforeAll(async () => {
  context.setGlobalContextManager(new AlsContextManager());
  leaf = await startBackend('leaf');
  mesh = createMesh({ services: { leaf: { endpoints: [leaf.url] } } });
  front = await serve(
    mesh.inbound((_req: http.IncomingMessage, res: http.ServerResponse) => {
      // What an instrumented handler does: it runs in a span, a child of the caller's.
      const call = () => mesh.fetch('http://leaf/x').then((r) => r.text());
      const done = inSpan ? context.with(trace.setSpanContext(context.active(), CHILD), call) : call();
      void done.then(() => res.end('ok'));
    }),
  );
  // The first entry point looks for @opentelemetry/api with a dynamic import: wait (a bounded
  // number of requests) until its requests show that it was found.
  propagation.setGlobalPropagator(w3c);
  for (let i = 0; i < 100 && leaf.received.at(-1)?.headers.traceparent !== '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01'; i++) {
    await httpRequest(`${front.url}/`);
  }
});

afterAll(async () => {
  propagation.disable();
  context.disable();
  await front.close();
  await mesh.close();
  await leaf.close();
});

beforeEach(() => {
  leaf.received.length = 0;
  inSpan = true;
  propagation.setGlobalPropagator(w3c);
});

test("with a propagator set, the outgoing traceparent is the active span's, once; the incoming one is not copied on top; other headers are", async () => {
  await httpRequest(`${front.url}/`, { headers: INCOMING });
  const got = leaf.received[0]!.headers;
  expect(got.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01');
  expect(got.tracestate).toBeUndefined(); // the propagator's field: the active context had none
  expect(got.b3).toBe(INCOMING.b3); // not a field of this propagator: copied
});

test('with a propagator set but no active span, the incoming trace context is copied', async () => {
  inSpan = false;
  await httpRequest(`${front.url}/`, { headers: INCOMING });
  expect(leaf.received[0]!.headers).toMatchObject(INCOMING);
});

test("with OpenTelemetry's undici instrumentation injecting (a subscriber on undici:request:create), meshlet adds none of the propagator's fields", async () => {
  const instrumentation = (message: unknown) => {
    const { request } = message as { request: { addHeader(name: string, value: string): void } };
    request.addHeader('traceparent', '00-11111111111111111111111111111111-2222222222222222-01');
  };
  diagnostics.subscribe('undici:request:create', instrumentation);
  try {
    await httpRequest(`${front.url}/`, { headers: INCOMING });
  } finally {
    diagnostics.unsubscribe('undici:request:create', instrumentation);
  }
  const got = leaf.received[0]!.headers;
  expect(got.traceparent).toBe('00-11111111111111111111111111111111-2222222222222222-01'); // one, the instrumentation's
  expect(got.tracestate).toBeUndefined();
  expect(got.b3).toBe(INCOMING.b3);
});

test('without a propagator, every listed header is copied as it came', async () => {
  propagation.disable();
  await httpRequest(`${front.url}/`, { headers: INCOMING });
  expect(leaf.received[0]!.headers).toMatchObject(INCOMING);
});
