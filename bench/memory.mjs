// Memory per endpoint: heap growth of a service with 10,000 endpoints — each an Endpoint with its
// health state — and its picker. An endpoint's undici Pool and its error-rate window are made on its first
// request, so this is what a large fleet costs before traffic. Run with --expose-gc. Each mesh
// lives in its own function scope so nothing keeps it alive afterwards.
import { createMesh } from '../dist/index.mjs';

const heap = () => {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
};

async function measure(endpoints, service) {
  const before = heap();
  const mesh = createMesh({ services: { api: { endpoints, ...service } } });
  const during = heap();
  await mesh.close();
  return (during - before) / endpoints.length;
}

export async function memory({ n = 10_000 } = {}) {
  const endpoints = Array.from({ length: n }, (_, i) => `http://127.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`);
  await measure(endpoints.slice(0, 200), {}); // warm-up: module state and JIT are not per-endpoint
  const rows = [
    ['defaults (prequal, outlier detection, breaker)', {}],
    ['without the circuit breaker', { circuitBreaker: false }],
    ['maglev', { balancer: 'maglev' }],
    ['ring-hash', { balancer: 'ring-hash' }],
  ];
  const results = {};
  console.log(`\nmemory per endpoint (${n} endpoints, before their first request; an endpoint's undici Pool (~18 KiB) and its error-rate window (two 10-slot arrays) are made on first use):`);
  for (const [name, service] of rows) {
    results[name] = await measure(endpoints, service);
    console.log(`  ${name.padEnd(50)} ${(results[name] / 1024).toFixed(1)} KiB`);
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) await memory();
