/**
 * Opt-in: route a whole process's `node:http` calls through the mesh, as `setGlobalDispatcher`
 * does for `fetch`, by making the mesh's agent `http.globalAgent` — the agent every
 * `http.request` / `http.get` without an `agent` option uses, and so axios, got and SDKs that do
 * not bring their own. Reversible: the returned function puts the previous agent back.
 *
 * Limits (README "Other HTTP clients"): `https.globalAgent` is left alone (services are addressed
 * as `http://name`; TLS to their endpoints is the service's `tls`); a library that creates its own
 * `http.Agent`, or is given one, keeps using it; a module that copied `http.globalAgent` before
 * the install keeps the old one.
 */
import http from 'node:http';

/**
 * Make `agent` the process's `http.globalAgent`; returns a function that restores the previous
 * one (only if `agent` is still the global one: a later install is not undone) and destroys
 * `agent` (its connections end, in-flight requests included). Calling it twice is harmless.
 */
export function installGlobalAgent(agent: http.Agent): () => void {
  const previous = http.globalAgent;
  http.globalAgent = agent;
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    if (http.globalAgent === agent) http.globalAgent = previous;
    agent.destroy();
  };
}
