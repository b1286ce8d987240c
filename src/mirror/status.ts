import type { ServerResponse } from 'node:http';
import { formatSize } from '../core/size.ts';
import { VERSION } from '../core/version.ts';
import type { MirrorContext } from './context.ts';
import { URL_NS } from './url-ref.ts';

/** The mirror's state as data: what /_accel/status.json returns and the HTML page shows. */
function mirrorStatus(ctx: MirrorContext) {
  const store = ctx.store.info();
  const urls = ctx.store.refs.count(URL_NS);
  return {
    version: VERSION,
    uptimeSeconds: Math.round((ctx.now() - ctx.stats.startedAt) / 1000),
    offline: ctx.offline,
    parent: ctx.parent?.base ?? null,
    ...ctx.stats,
    inflight: ctx.fetcher.inflight,
    store: { home: store.home, blobs: store.blobs, bytes: store.bytes, urls, limit: ctx.store.limitStatus() },
    condaChannels: Object.entries(ctx.condaChannels).map(([name, dir]) => ({ name, path: `/conda/${name}`, dir })),
  };
}

export function statusResponse(ctx: MirrorContext, raw: string, res: ServerResponse): void {
  const path = raw.split('?')[0];
  const status = mirrorStatus(ctx);
  if (path === '/_accel/status.json') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(status, null, 2)}\n`);
  } else if (path === '/_accel/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics(status));
  } else if (path === '/_accel/status') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html(status));
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('no such status page\n');
  }
}

type Status = ReturnType<typeof mirrorStatus>;

function metrics(s: Status): string {
  const lines: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, value: number, labels = '') => {
    if (!lines.some((l) => l.startsWith(`# TYPE accel_mirror_${name} `))) {
      lines.push(`# HELP accel_mirror_${name} ${help}`, `# TYPE accel_mirror_${name} ${type}`);
    }
    lines.push(`accel_mirror_${name}${labels} ${value}`);
  };
  metric('requests_total', 'counter', 'Requests received.', s.requests);
  for (const [label, value] of [
    ['HIT', s.hits],
    ['MISS', s.misses],
    ['REVALIDATED', s.revalidated],
    ['STALE', s.stale],
  ] as const) {
    metric('responses_total', 'counter', 'Responses by cache status.', value, `{cache="${label}"}`);
  }
  metric('errors_total', 'counter', 'Requests answered with an error by the mirror.', s.errors);
  metric('upstream_errors_total', 'counter', 'Upstream failures (connection, 5xx, truncation).', s.upstreamErrors);
  metric('served_bytes_total', 'counter', 'Body bytes sent to clients.', s.bytesServed);
  metric('fetched_bytes_total', 'counter', 'Body bytes received from upstreams.', s.bytesFetched);
  metric('inflight_downloads', 'gauge', 'Upstream downloads in progress.', s.inflight);
  // Each family's lines together, as the exposition format wants.
  const hosts = Object.entries(s.upstreams).map(([host, u]) => ({
    u,
    labels: `{host="${host.replace(/["\\\n]/g, '_')}"}`,
  }));
  for (const { u, labels } of hosts) {
    metric('upstream_downloads_total', 'counter', 'Downloads stored, by upstream host.', u.downloads, labels);
  }
  for (const { u, labels } of hosts) {
    metric('upstream_fetched_bytes_total', 'counter', 'Bytes stored, by upstream host.', u.bytes, labels);
  }
  for (const { u, labels } of hosts) {
    metric('upstream_failures_total', 'counter', 'Failed downloads, by upstream host.', u.failures, labels);
  }
  metric('store_bytes', 'gauge', 'Bytes held by the store.', s.store.bytes);
  metric('store_blobs', 'gauge', 'Blobs held by the store.', s.store.blobs);
  const limit = s.store.limit;
  if (limit) {
    metric('store_max_bytes', 'gauge', 'The store limit (store.maxSize).', limit.maxBytes);
    metric('store_pinned_bytes', 'gauge', 'Bytes of pinned blobs, which gc never evicts.', limit.pinnedBytes);
    metric('store_gc_runs_total', 'counter', 'Background gc passes this process ran.', limit.gcRuns);
    metric('store_evicted_blobs_total', 'counter', 'Blobs evicted by this process.', limit.evictedBlobs);
    metric('store_evicted_bytes_total', 'counter', 'Bytes evicted by this process.', limit.evictedBytes);
    metric('store_gc_cpu_seconds_total', 'counter', 'CPU time of the main thread spent evicting.', limit.gcCpuSeconds);
    metric(
      'store_over_limit_by_kept',
      'gauge',
      '1 while pinned or held blobs alone exceed the limit.',
      +limit.overByKept,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Cache hits among the answers that could have been one: hits and revalidations over all cached or fetched. */
function hitRate(s: Pick<Status, 'hits' | 'misses' | 'revalidated' | 'stale'>): number | undefined {
  const answered = s.hits + s.misses + s.revalidated + s.stale;
  return answered === 0 ? undefined : (s.hits + s.revalidated + s.stale) / answered;
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

function storeLimitRow(l: NonNullable<Status['store']['limit']>): [string, unknown] {
  const over = l.overByKept ? '; over the limit by pinned or held blobs' : '';
  return [
    'store limit',
    `${formatSize(l.bytes)} of ${formatSize(l.maxBytes)} (gc from ${formatSize(l.highBytes)} to ${formatSize(l.lowBytes)}); ` +
      `${l.evictedBlobs} blobs, ${formatSize(l.evictedBytes)} evicted in ${l.gcRuns} passes${over}`,
  ];
}

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 19);

/**
 * The status page a person reads: hit rate, sizes in units, each upstream, the latest failures and downloads.
 * It refreshes itself in place every 2 s (it fetches itself and swaps <main>), so it can stay open on a screen.
 */
function html(s: Status): string {
  const esc = (v: unknown) => String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const table = (head: string[], rows: unknown[][], empty: string) =>
    rows.length === 0
      ? `<p class="empty">${esc(empty)}</p>`
      : `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows
          .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
          .join('')}</table>`;
  const rate = hitRate(s);
  const summary: [string, unknown][] = [
    ['mode', s.offline ? 'offline' : 'online'],
    ...(s.parent ? [['parent mirror', s.parent] as [string, unknown]] : []),
    ['up for', duration(s.uptimeSeconds)],
    ['hit rate', rate === undefined ? 'no answers yet' : `${(rate * 100).toFixed(1)} %`],
    ['requests', s.requests],
    ['answers', `${s.hits} hits, ${s.misses} misses, ${s.revalidated} revalidated, ${s.stale} stale`],
    ['errors', `${s.errors} answered with an error, ${s.upstreamErrors} upstream failures`],
    ['served', formatSize(s.bytesServed)],
    ['fetched from upstreams', formatSize(s.bytesFetched)],
    ['downloads in flight', s.inflight],
    ['store', `${s.store.blobs} blobs, ${formatSize(s.store.bytes)}, ${s.store.urls} URLs (${s.store.home})`],
    ...(s.store.limit ? [storeLimitRow(s.store.limit)] : []),
    ...s.condaChannels.map((c): [string, unknown] => [`conda channel ${c.path}`, c.dir]),
  ];
  const upstreams = Object.entries(s.upstreams)
    .sort(([, a], [, b]) => b.bytes - a.bytes)
    .map(([host, u]) => [host, u.downloads, formatSize(u.bytes), u.failures]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>accel mirror</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}td,th{padding:.2em 1em .2em 0;text-align:left;vertical-align:top}
td{font-family:ui-monospace,monospace;word-break:break-all}h2{font-size:1.1em;margin-top:1.5em}.empty{color:#777}</style>
</head><body><main>
<h1>accel mirror ${esc(s.version)}</h1>
<table>${summary.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>
<h2>Upstreams</h2>
${table(['host', 'downloads', 'fetched', 'failures'], upstreams, 'nothing fetched yet')}
<h2>Latest failures</h2>
${table(
  ['time (UTC)', 'status', 'URL', 'error'],
  s.recentFailures.map((f) => [clock(f.at), f.status, f.url, f.error]),
  'none',
)}
<h2>Latest downloads</h2>
${table(
  ['time (UTC)', 'URL', 'size', 'took'],
  s.recentDownloads.map((d) => [clock(d.at), d.url, formatSize(d.bytes), `${d.ms} ms`]),
  'none yet',
)}
</main>
<p id="refreshed">as of ${esc(clock(Date.now()))} UTC</p>
<p><a href="/_accel/status.json">JSON</a> · <a href="/_accel/metrics">metrics</a></p>
<script>
setInterval(async () => {
  try {
    const page = new DOMParser().parseFromString(await (await fetch(location.href, { cache: 'no-store' })).text(), 'text/html');
    document.querySelector('main').replaceWith(page.querySelector('main'));
    document.getElementById('refreshed').textContent = 'refreshed ' + new Date().toISOString().slice(11, 19) + ' UTC';
  } catch {
    document.getElementById('refreshed').textContent = 'cannot reach the mirror; retrying';
  }
}, 2000);
</script>
</body></html>
`;
}
