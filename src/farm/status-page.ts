import { formatSize } from '../core/size.ts';
import type { FarmStatus } from './status.ts';

const esc = (s: string | number) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The syncer's status as an HTML page (what `accel farm status` prints). */
export function farmStatusHtml(s: FarmStatus): string {
  const q = s.queue;
  const rows = s.workers
    .map(
      (w) =>
        `<tr><td>${esc(w.name)}</td><td>${w.cores}</td><td>${w.running}</td><td>${w.done}</td><td>${w.failed}</td><td>${esc(w.toolchains.join(', '))}</td><td>${esc(w.lastSeen)}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>accel farm</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:left}</style></head>
<body><h1>accel farm</h1>
<p>${s.workers.length} workers, ${s.cores} cores; queue ${q.queued}, running ${q.running}, ${q.jobsPerSecond.toFixed(1)} jobs/s</p>
<p>completed ${q.completed}, infrastructure failures ${q.infraFailures}, lease expiries ${q.leaseExpiries}, requeued ${q.requeued},
toolchain mismatches ${q.toolchainMismatches}, not started in time ${q.notStarted}, refused ${q.refused};
${q.fallbacks} jobs given back to clients to compile locally</p>
<p>include tree ${esc(s.syncer.manifest.slice(0, 12))}: ${s.syncer.files} files under ${esc(s.syncer.roots.join(', '))} (${s.syncer.publishes} published)</p>
${s.store ? `<p>store ${formatSize(s.store.bytes)} of ${formatSize(s.store.maxBytes)}; ${s.store.evictedBlobs} blobs, ${formatSize(s.store.evictedBytes)} evicted in ${s.store.gcRuns} gc passes${s.store.overByKept ? '; over the limit by pinned or held blobs' : ''}</p>` : ''}
<table><tr><th>worker</th><th>cores</th><th>running</th><th>done</th><th>failed</th><th>toolchains</th><th>last seen</th></tr>
${rows}
</table></body></html>
`;
}
