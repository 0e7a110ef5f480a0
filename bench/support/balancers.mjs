// Which balancers this build of meshlet has. The public API has no list, so: the names registered
// are read from the error an unknown name gets ("… (registered: a, b, c)"), and each name asked for
// is tried in a throwaway mesh (no request is sent, no connection made); unknown ones are reported
// and skipped.
import { createMesh } from '../../dist/index.mjs';

/** Every balancer meshlet ships or is being given; the benches run the ones registered. */
export const ALL_BALANCERS = ['round-robin', 'random', 'least-request', 'peak-ewma', 'prequal', 'ring-hash', 'maglev'];

/** The names meshlet accepts as `balancer`, in order; prints one line per name it does not. */
export async function registeredBalancers(names = ALL_BALANCERS, label = 'bench') {
  const known = [];
  for (const name of names) {
    let mesh;
    try {
      mesh = createMesh({ services: { probe: { endpoints: ['http://127.0.0.1:9'], balancer: name } } });
      known.push(name);
    } catch (err) {
      if (err?.code !== 'INVALID_CONFIG') throw err;
      console.log(`   ${label}: balancer "${name}" is not registered in this build; skipped (${err.message})`);
    } finally {
      await mesh?.close({ graceMs: 0 });
    }
  }
  return known;
}

/** Every name registered now (built-ins first, in ALL_BALANCERS order), or ALL_BALANCERS if unreadable. */
export async function everyRegisteredBalancer() {
  let mesh;
  try {
    mesh = createMesh({ services: { probe: { endpoints: ['http://127.0.0.1:9'], balancer: 'no-such-balancer-probe' } } });
  } catch (err) {
    const listed = /registered: ([^)]*)\)/.exec(err?.message ?? '')?.[1];
    if (listed) {
      const names = listed.split(',').map((s) => s.trim()).filter(Boolean);
      return [...ALL_BALANCERS.filter((n) => names.includes(n)), ...names.filter((n) => !ALL_BALANCERS.includes(n))];
    }
  } finally {
    await mesh?.close({ graceMs: 0 });
  }
  return ALL_BALANCERS;
}

/** The list from BENCH_BALANCERS (comma-separated), else every registered balancer. */
export async function balancersFromEnv() {
  const raw = process.env.BENCH_BALANCERS;
  return raw ? raw.split(',').map((s) => s.trim()).filter(Boolean) : everyRegisteredBalancer();
}

/** The balancer a service gets when its config names none (read from `mesh.toJSON()`). */
export async function defaultBalancer() {
  const mesh = createMesh({ services: { probe: { endpoints: ['http://127.0.0.1:9'] } } });
  try {
    const b = mesh.toJSON().services.probe.balancer;
    return typeof b === 'string' ? b : b.type;
  } finally {
    await mesh.close({ graceMs: 0 });
  }
}
