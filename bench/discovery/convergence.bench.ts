// Discovery convergence and scale: a Service with 1,000 endpoints over 10 EndpointSlices behind the
// test API server; one slice changes at a time. Reported: time from the API's watch event to the
// balancer using (or dropping) the endpoint, and the cost of applying one slice update.
import { expect, test } from 'vitest';
import { createMesh } from '../../src/index.js';
import { slice, startKubeApi } from '../../test/support/kube-apiserver.js';

const ipOf = (i: number): string => `127.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

test('1,000 endpoints over 10 slices: convergence and update cost', async () => {
  const api = await startKubeApi();
  const perSlice = 100;
  const build = (s: number, extra = 0) =>
    slice(`web-${s}`, 'web', Array.from({ length: perSlice + extra }, (_, k) => ({ ip: ipOf(s * 1000 + k + 1) })), 8080);
  for (let s = 0; s < 10; s++) api.apply('endpointslices', 'default', build(s));
  const mesh = createMesh({
    services: { web: { discovery: { type: 'kubernetes', service: 'web', namespace: 'default', port: 'http', apiServer: api.url, podLabels: false }, circuitBreaker: false } },
  });
  const count = (): number => mesh.service('web')!.endpoints().length;
  const until = async (n: number): Promise<number> => {
    const t = performance.now();
    while (count() !== n) {
      if (performance.now() - t > 5000) throw new Error(`stuck at ${count()} endpoints`);
      await new Promise((r) => setImmediate(r));
    }
    return performance.now() - t;
  };
  await until(1000);
  const adds: number[] = [];
  const removes: number[] = [];
  for (let i = 0; i < 20; i++) {
    const s = i % 10;
    api.apply('endpointslices', 'default', build(s, 1));
    adds.push(await until(1001));
    api.apply('endpointslices', 'default', build(s));
    removes.push(await until(1000));
  }
  // The cost of one update inside the process: merge the slices, diff, rebuild the picker.
  const svc = mesh.service('web')!;
  const t = performance.now();
  const rounds = 50;
  for (let i = 0; i < rounds; i++) svc.refresh();
  const rebuildMs = (performance.now() - t) / rounds;
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  console.log(
    `\ndiscovery convergence (1,000 endpoints, 10 slices, kubernetes watch on loopback): endpoint added in ${median(adds).toFixed(1)} ms (median, max ${Math.max(...adds).toFixed(1)}), ` +
      `removed in ${median(removes).toFixed(1)} ms (max ${Math.max(...removes).toFixed(1)}); target < 100 ms. Picker rebuild for 1,000 endpoints: ${rebuildMs.toFixed(2)} ms`,
  );
  expect(adds.length).toBe(20);
  await mesh.close({ graceMs: 100 });
  await api.close();
}, 60_000);
