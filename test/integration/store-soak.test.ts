// The soak of a size-limited store in three tiers on loopback: an origin, a central mirror and an edge mirror
// (`accel mirror serve --parent`, a child process) whose store is small. 10,000 requests of a Zipf mix, the edge
// killed with SIGKILL while it collects garbage and started again, then the parent down and the edge offline.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import Database from 'better-sqlite3';
import { takeFileLock } from '../../src/store/lock.ts';
import { runAccel, sha256, tempDir } from '../helpers.ts';
import { serveCli, startTestMirror } from '../mirror-harness.ts';

const KB = 1024;
const LIMIT = 2 * 1024 * KB;
const URLS = 4000;
const REQUESTS = 10_000;
const CLIENTS = 8;

/** A deterministic pseudo-random stream (mulberry32): the same trace and sizes every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** File i: 1 KB to 64 KB (log-uniform), bytes derived from i. */
function content(i: number): Buffer {
  const size = Math.round(KB * 64 ** random(i + 1)());
  const out = Buffer.alloc(size);
  for (let off = 0, n = 0; off < size; off += 32, n++) {
    createHash('sha256').update(`${i}:${n}`).digest().copy(out, off);
  }
  return out;
}

/** A Zipf (s = 1) sampler over 0..n-1 by inverting the cumulative weights. */
function zipf(n: number, next: () => number): () => number {
  const cumulative = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += 1 / (k + 1);
    cumulative[k] = sum;
  }
  return () => {
    const x = next() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

async function startOrigin(t: TestContext) {
  const digests = new Map<number, string>();
  const server = createServer((req, res) => {
    const m = /^\/f\/pkg-(\d+)-1\.0\.tar\.gz$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404).end();
    const body = content(Number(m[1]));
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(r)));
  const origin = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const expected = (i: number) => {
    const known = digests.get(i);
    if (known) return known;
    const digest = sha256(content(i));
    digests.set(i, digest);
    return digest;
  };
  return { origin, expected, path: (i: number) => `/http/${origin}/f/pkg-${i}-1.0.tar.gz` };
}

/** What the edge's store holds, per its index and per its files. */
function onDisk(home: string): { files: number; bytes: number } {
  const root = join(home, 'blobs', 'sha256');
  let files = 0;
  let bytes = 0;
  for (const shard of readdirSync(root)) {
    for (const name of readdirSync(join(root, shard))) {
      files++;
      bytes += statSync(join(root, shard, name)).size;
    }
  }
  return { files, bytes };
}

function indexRows(home: string): { blobs: number; bytes: number; journal: number } {
  const db = new Database(join(home, 'index.db'), { readonly: true });
  try {
    const totals = db.prepare('SELECT count(*) AS blobs, coalesce(sum(size), 0) AS bytes FROM blobs').get() as {
      blobs: number;
      bytes: number;
    };
    return { ...totals, journal: db.prepare('SELECT count(*) FROM evicting').pluck().get() as number };
  } finally {
    db.close();
  }
}

/** Samples the edge's size (the index's totals row) every few milliseconds; `max` is the largest seen. */
function sampleSize(home: string) {
  let max = 0;
  let samples = 0;
  let db: Database.Database | undefined;
  const timer = setInterval(() => {
    try {
      db ??= new Database(join(home, 'index.db'), { readonly: true });
      const bytes = db.prepare('SELECT bytes FROM store_totals').pluck().get() as number;
      max = Math.max(max, bytes);
      samples++;
    } catch {
      // The edge is starting (no index yet) or was just killed: the next sample reads again.
      db?.close();
      db = undefined;
    }
  }, 3);
  return {
    stop() {
      clearInterval(timer);
      db?.close();
      return { max, samples };
    },
  };
}

test('a size-limited edge below a parent: 10,000 Zipf requests, kill -9 during a gc, restart, parent down, offline', async (t) => {
  const origin = await startOrigin(t);
  const central = await startTestMirror(t, { allow: [origin.origin] });
  const home = tempDir(t);
  const env = { ACCEL_STORE_MAX_SIZE: `${LIMIT}`, ACCEL_STORE_LOW_WATER: '50' };
  const args = ['--allow', origin.origin, '--parent', central.base];
  const largest = Math.max(...Array.from({ length: URLS }, (_, i) => content(i).length));
  const pick = zipf(URLS, random(42));
  const sampler = sampleSize(home);
  t.after(() => sampler.stop());
  let sent = 0;
  const served = new Map<string, number>();

  /** `count` requests from CLIENTS clients; every answer must be the origin's exact bytes. */
  async function traffic(base: string, count: number, stop?: () => boolean) {
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (count > 0 && !stop?.()) {
        count--;
        const i = pick();
        sent++;
        const answer = await fetch(`${base}${origin.path(i)}`)
          .then(async (res) => ({ res, body: Buffer.from(await res.arrayBuffer()) }))
          .catch((err: Error) => err);
        if (answer instanceof Error) {
          if (stop?.()) return; // the edge was killed under this request
          throw answer;
        }
        const { res, body } = answer;
        assert.equal(res.status, 200, `${origin.path(i)}: ${body.toString().slice(0, 200)}`);
        assert.equal(sha256(body), origin.expected(i), `${origin.path(i)} served corrupt`);
        const cache = res.headers.get('x-accel-cache') ?? 'none';
        served.set(cache, (served.get(cache) ?? 0) + 1);
      }
    });
    await Promise.all(clients);
  }

  // 1. Warm-up traffic, then more until the edge is caught inside a gc (its gc lock held), and SIGKILL it there.
  let edge = await serveCli(t, home, args, env);
  await traffic(edge.base, 3000);
  const lockFile = join(home, 'run', 'gc.lock');
  let caught = false;
  const killer = (async () => {
    const deadline = Date.now() + 60_000;
    while (!caught && Date.now() < deadline) {
      const probe = takeFileLock(lockFile, home, 0);
      if (probe) probe.release();
      else {
        edge.child.kill('SIGKILL');
        caught = true;
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  await traffic(edge.base, REQUESTS, () => caught);
  await killer;
  assert.ok(caught, 'the edge was killed while it held the gc lock');
  await edge.exited;
  const atCrash = { index: indexRows(home), disk: onDisk(home) };
  t.diagnostic(`killed in a gc after ${sent} requests: ${JSON.stringify(atCrash)}`);
  assert.ok(
    atCrash.disk.bytes <= LIMIT + largest,
    `files after the crash: ${atCrash.disk.bytes} > ${LIMIT} + one blob`,
  );

  // 2. The index and the files agree once verify has run (it finishes the cut-short eviction first).
  const verify = await runAccel(['--home', home, '--json', 'store', 'verify']);
  assert.equal(verify.code, 0, verify.stderr.toString());
  const v = JSON.parse(verify.stdout.toString()) as { missing: string[]; corrupt: unknown[]; adopted: string[] };
  assert.deepEqual(v.corrupt, [], 'no blob corrupt after the crash');
  assert.deepEqual(v.missing, [], 'no row without its file');
  assert.ok(v.adopted.length <= 1, `at most the one put in flight is adopted: ${v.adopted.length}`);
  const after = { index: indexRows(home), disk: onDisk(home) };
  assert.equal(after.index.journal, 0);
  assert.deepEqual([after.index.blobs, after.index.bytes], [after.disk.files, after.disk.bytes], 'index = files');

  // 3. Started again on the same store: the rest of the 10,000 requests.
  edge = await serveCli(t, home, args, env);
  await traffic(edge.base, REQUESTS - sent);
  const metrics = await (await fetch(`${edge.base}/_accel/metrics`)).text();
  const evicted = Number(/^accel_mirror_store_evicted_blobs_total (\d+)$/m.exec(metrics)?.[1]);
  assert.ok(evicted > 0, `the restarted edge evicted too:\n${metrics}`);
  const { max, samples } = sampler.stop();
  t.diagnostic(
    `${sent} requests ${JSON.stringify(Object.fromEntries(served))}; largest size seen ${max} in ${samples} samples`,
  );
  assert.ok(samples > 100);
  assert.ok(max <= LIMIT, `the index never held more than the limit: ${max} > ${LIMIT}`);
  assert.ok(max > LIMIT * 0.5, `the store did fill up (${max})`);
  assert.ok((served.get('HIT') ?? 0) > 1000 && (served.get('MISS') ?? 0) > 1000, JSON.stringify([...served]));
  assert.ok(onDisk(home).bytes <= LIMIT + largest);

  // 4. The parent down: what the edge holds is served, a miss is a 502 naming the parent.
  const hot = origin.path(0);
  for (let n = 0; n < 2; n++) await (await fetch(`${edge.base}${hot}`)).arrayBuffer();
  await central.close();
  const held = await fetch(`${edge.base}${hot}`);
  assert.equal(held.status, 200);
  assert.equal(sha256(Buffer.from(await held.arrayBuffer())), origin.expected(0));
  const never = `/http/${origin.origin}/f/pkg-${URLS + 1}-1.0.tar.gz`;
  const down = await fetch(`${edge.base}${never}`);
  assert.equal(down.status, 502);
  assert.match(await down.text(), new RegExp(`parent mirror ${central.base}`));

  // 5. Offline: the same hit, and a miss is a 504 naming the parent.
  edge.child.kill('SIGTERM');
  await edge.exited;
  edge = await serveCli(t, home, [...args, '--offline'], env);
  const offlineHit = await fetch(`${edge.base}${hot}`);
  assert.equal(offlineHit.status, 200);
  assert.equal(sha256(Buffer.from(await offlineHit.arrayBuffer())), origin.expected(0));
  const offlineMiss = await fetch(`${edge.base}${never}`);
  assert.equal(offlineMiss.status, 504);
  assert.match(await offlineMiss.text(), new RegExp(`parent mirror ${central.base}`));
  edge.child.kill('SIGTERM');
  await edge.exited;

  const last = await runAccel(['--home', home, '--json', 'store', 'verify']);
  const clean = JSON.parse(last.stdout.toString()) as { missing: string[]; corrupt: unknown[]; adopted: string[] };
  assert.deepEqual([clean.missing, clean.corrupt, clean.adopted], [[], [], []]);
});
