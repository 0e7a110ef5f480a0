/**
 * The live view's page: one self-contained HTML document (no external assets) that polls
 * `<path>/stats` once a second and draws, per service and endpoint, the labels (version…), the
 * traffic share (a bar), the requests per second over the last minute (a sparkline), latency,
 * in-flight, the load the endpoint reports (ORCA) and state; and, when the mesh serves requests
 * itself (`mesh.inbound`), its inbound side: per entry point, in flight, requests per second,
 * the concurrency limit, refusals, and whether it drains.
 */
export function liveViewPage(statsPath: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>meshlet — live view</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2433; background: #f7f8fa; }
  h1 { font-size: 20px; margin: 0 0 4px; } .sub { color: #667; margin-bottom: 20px; }
  section { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 12px 16px; margin-bottom: 16px; }
  h2 { font-size: 16px; margin: 0 0 8px; } h2 small { font-weight: normal; color: #667; }
  table { border-collapse: collapse; width: 100%; }
  th { text-align: left; font-weight: 600; color: #556; border-bottom: 1px solid #e4e7ec; padding: 4px 8px; font-size: 12px; }
  td { padding: 6px 8px; border-bottom: 1px solid #f0f1f4; vertical-align: middle; font-variant-numeric: tabular-nums; }
  .bar { background: #e8ecf3; border-radius: 3px; height: 12px; width: 220px; position: relative; }
  .bar > span { position: absolute; left: 0; top: 0; bottom: 0; background: #3b82f6; border-radius: 3px; }
  .state { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; }
  .healthy { background: #16a34a; } .ejected { background: #dc2626; } .half-open { background: #d97706; }
  .unhealthy { background: #9333ea; } .draining { background: #64748b; }
  svg { display: block; } .err { color: #dc2626; } .labels { color: #556; font-size: 12px; }
</style></head>
<body>
<h1>meshlet — live view</h1><div class="sub" id="sub">connecting…</div>
<div id="inbound"></div><div id="services"></div>
<script>
const statsUrl = ${JSON.stringify(statsPath)};
const history = new Map(); // endpoint url -> { last, series: [] }
function stateOf(ep) { return ep.state === 'draining' ? 'draining' : ep.health; }
function spark(series) {
  const w = 160, h = 28, max = Math.max(1, ...series);
  const pts = series.map((v, i) => (i * w / 59).toFixed(1) + ',' + (h - 2 - (v / max) * (h - 4)).toFixed(1)).join(' ');
  return '<svg width="' + w + '" height="' + h + '"><polyline fill="none" stroke="#3b82f6" stroke-width="1.5" points="' + pts + '"/></svg>';
}
function labels(l) { return Object.entries(l || {}).map(([k, v]) => esc(k) + '=' + esc(v)).join(' '); }
function load(r) { return r ? 'util ' + r.utilization.toFixed(2) + (r.rif === undefined ? '' : ' · rif ' + r.rif) : ''; }
const inboundSeen = new Map(); // entry -> requests at the last tick
function inbound(s) {
  if (!s) return '';
  let html = '<section data-inbound><h2>inbound <small>' + (s.draining ? '<span class="state draining">draining</span> · ' : '') + s.inFlight + ' in flight</small></h2>';
  html += '<table><tr><th>entry point</th><th>in flight</th><th>req/s</th><th>concurrency limit</th><th>overloaded (503)</th><th>rate limited (429)</th><th>with a deadline</th></tr>';
  for (const [name, e] of Object.entries(s.entries)) {
    const rate = Math.max(0, e.requests - (inboundSeen.get(name) ?? e.requests));
    inboundSeen.set(name, e.requests);
    html += '<tr data-entry="' + esc(name) + '"><td>' + esc(name) + '</td><td>' + e.inFlight + '</td><td>' + rate + '</td><td>' + (e.concurrencyLimit ?? '—') + '</td><td>' + e.overloaded + '</td><td>' + e.rateLimited + '</td><td>' + e.withDeadline + '</td></tr>';
  }
  return html + '</table></section>';
}
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]); }
async function tick() {
  let stats;
  try { stats = await (await fetch(statsUrl, { cache: 'no-store' })).json(); }
  catch (e) { document.getElementById('sub').innerHTML = '<span class="err">stats unavailable: ' + esc(e.message) + '</span>'; return; }
  document.getElementById('sub').textContent = 'updated ' + new Date().toLocaleTimeString() + ' — refreshes every second';
  let html = '';
  for (const [name, s] of Object.entries(stats.services)) {
    const rates = s.endpoints.map((ep) => {
      const h = history.get(ep.url) ?? { last: ep.requests, series: [] };
      const rate = Math.max(0, ep.requests - h.last);
      h.last = ep.requests; h.series.push(rate); if (h.series.length > 60) h.series.shift();
      history.set(ep.url, h);
      return rate;
    });
    const total = rates.reduce((a, b) => a + b, 0);
    html += '<section data-service="' + esc(name) + '"><h2>' + esc(name) + ' <small>' + esc(s.balancer) + ' · ' + esc(s.discovery) + ' · ' + s.endpoints.length + ' endpoints · ' + total + ' req/s · retries ' + s.retries + '</small></h2>';
    html += '<table><tr><th>endpoint</th><th>labels</th><th>state</th><th>traffic share</th><th>req/s (last minute)</th><th>latency</th><th>in flight</th><th>reported load</th><th>ejections</th></tr>';
    s.endpoints.forEach((ep, i) => {
      const share = total ? (rates[i] * 100 / total) : 0;
      const st = stateOf(ep);
      html += '<tr data-endpoint="' + esc(ep.url) + '" data-state="' + st + '"><td>' + esc(ep.url) + (ep.zone ? ' <small>' + esc(ep.zone) + '</small>' : '') + '</td>' +
        '<td class="labels">' + labels(ep.labels) + '</td>' +
        '<td><span class="state ' + st + '">' + st + '</span></td>' +
        '<td><div class="bar"><span style="width:' + share.toFixed(1) + '%"></span></div> ' + share.toFixed(0) + ' %</td>' +
        '<td>' + spark(history.get(ep.url).series) + '</td>' +
        '<td>' + ep.latencyEwmaMs.toFixed(1) + ' ms</td><td>' + ep.inFlight + '</td><td>' + load(ep.reportedLoad) + '</td><td>' + ep.ejections + '</td></tr>';
    });
    html += '</table></section>';
  }
  document.getElementById('services').innerHTML = html;
  document.getElementById('inbound').innerHTML = inbound(stats.inbound);
}
tick(); setInterval(tick, 1000);
</script></body></html>`;
}
