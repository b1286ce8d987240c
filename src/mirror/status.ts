import type { ServerResponse } from 'node:http';
import { VERSION } from '../core/version.ts';
import type { MirrorContext } from './handler.ts';
import { URL_NS } from './url-ref.ts';

/** The mirror's state as data: what /_accel/status.json returns and the HTML page shows. */
export function mirrorStatus(ctx: MirrorContext) {
  const store = ctx.store.info();
  const urls = ctx.store.refs.count(URL_NS);
  return {
    version: VERSION,
    uptimeSeconds: Math.round((ctx.now() - ctx.stats.startedAt) / 1000),
    offline: ctx.offline,
    ...ctx.stats,
    inflight: ctx.fetcher.inflight,
    store: { home: store.home, blobs: store.blobs, bytes: store.bytes, urls },
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
  metric('store_bytes', 'gauge', 'Bytes held by the store.', s.store.bytes);
  metric('store_blobs', 'gauge', 'Blobs held by the store.', s.store.blobs);
  return `${lines.join('\n')}\n`;
}

function html(s: Status): string {
  const esc = (v: unknown) => String(v).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const rows = [
    ['mode', s.offline ? 'offline' : 'online'],
    ['uptime', `${s.uptimeSeconds} s`],
    ['requests', s.requests],
    ['hits', s.hits],
    ['misses', s.misses],
    ['revalidated', s.revalidated],
    ['stale', s.stale],
    ['errors', s.errors],
    ['upstream errors', s.upstreamErrors],
    ['bytes served', s.bytesServed],
    ['bytes fetched', s.bytesFetched],
    ['downloads in flight', s.inflight],
    ['store', `${s.store.blobs} blobs, ${s.store.bytes} bytes, ${s.store.urls} URLs (${s.store.home})`],
    ...s.condaChannels.map((c) => [`conda channel ${c.path}`, c.dir]),
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>accel mirror</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{padding:.2em 1em;text-align:left}td:last-child{font-family:monospace}</style>
</head><body><h1>accel mirror ${esc(s.version)}</h1>
<table>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>
<p><a href="/_accel/status.json">JSON</a> · <a href="/_accel/metrics">metrics</a></p>
</body></html>
`;
}
