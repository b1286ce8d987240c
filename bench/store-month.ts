// A month of mirror traffic replayed in minutes: a Zipf mix over 100,000 URLs through `accel mirror serve` with
// a store limit of 20 % of the working set, beside an ideal LRU of the same size simulated on the same trace.
// Measures the hit rate, the store's size against its limit, gc CPU per GiB evicted, and the p99 latency of hits
// while gc runs against while it does not (and against the same trace with no limit at all).
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { type Server, startAccelMirror, stop } from './servers.ts';
import { fmt, median, sh } from './util.ts';

const KiB = 2 ** 10;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const URLS = 100_000;
/** Zipf exponent: request probability of the URL of popularity rank r is proportional to 1 / r^s. */
const ZIPF_S = 0.9;
const REQUESTS = Number(process.env.STORE_MONTH_REQUESTS ?? 40_000);
/** Sizes: a bounded Pareto from 1 KiB to 50 MiB with this shape (median ~3 KiB, mean ~110 KiB, a heavy tail). */
const MIN_SIZE = KiB;
const MAX_SIZE = 50 * MiB;
const PARETO_ALPHA = 0.6;
/** The store limit as a share of the working set (the distinct bytes the trace touches). */
const LIMIT_SHARE = 0.2;
const HIGH_WATER = 0.95;
const LOW_WATER = 0.85;
const CLIENTS = 6;
const SAMPLE_MS = 100;
/** Hits up to this size are compared for latency: one read and one write, whatever the size mix. */
const SMALL_HIT = MiB;
/** The store writes a blob's access time at most once a minute (src/store/cas.ts TOUCH_GRANULARITY_MS). */
const TOUCH_GRANULARITY_MS = 60_000;
/**
 * The mirror's wall clock runs this many times faster than real time (libfaketime; timers keep the real
 * monotonic clock), so that ~72 s of replay is a month to the store: access times kept to the minute are then
 * as exact, relative to the traffic, as they are in a real month.
 */
const CLOCK_SPEEDUP = 36_000;
const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
/** Misses of blobs at least this large are followed by a read of the store's size. */
const PROBE_AFTER = 4 * MiB;
const SEED = 20_261_207;
const CHUNK = 64 * KiB;

/** Deterministic 32-bit hash of an integer (a splitmix-style finaliser). */
function hash32(x: number): number {
  let h = (x ^ SEED) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** The size of URL `id`, the same in the origin and in the trace: bounded Pareto by inverse transform. */
export function sizeOf(id: number): number {
  const u = hash32(id * 2 + 1) / 2 ** 32;
  const a = PARETO_ALPHA;
  const la = MIN_SIZE ** a;
  const ha = MAX_SIZE ** a;
  return Math.floor((-(u * ha - u * la - ha) / (ha * la)) ** (-1 / a));
}

const urlPath = (id: number) => `/o/pkg-1.0-${id}.tar.gz`;

/** A seeded PRNG (mulberry32): the same trace every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** REQUESTS URL ids, Zipf by rank; ranks map to ids by a bijection so popularity and id are unrelated. */
function makeTrace(): number[] {
  const cumulative = new Float64Array(URLS);
  let total = 0;
  for (let r = 0; r < URLS; r++) {
    total += 1 / (r + 1) ** ZIPF_S;
    cumulative[r] = total;
  }
  const random = prng(SEED);
  const trace: number[] = [];
  for (let n = 0; n < REQUESTS; n++) {
    const x = random() * total;
    let lo = 0;
    let hi = URLS - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    // 48271 is prime to 100,000: rank → id is a permutation.
    trace.push((lo * 48_271) % URLS);
  }
  return trace;
}

// ---------------------------------------------------------------------------------------------------------------
// The origin: runs in a worker thread (its own event loop, so generating bytes does not delay the clients'
// clocks) and generates each URL's bytes per request from a 1 MiB seeded pool: nothing is kept per URL.

function runOrigin(): void {
  const random = prng(SEED ^ 0x5eed);
  const pool = Buffer.alloc(MiB);
  for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE(Math.floor(random() * 2 ** 32), i);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const m = /^\/o\/pkg-1\.0-(\d+)\.tar\.gz$/.exec(req.url ?? '');
    const id = m ? Number(m[1]) : Number.NaN;
    if (!(id >= 0 && id < URLS)) {
      res.writeHead(404).end();
      return;
    }
    const size = sizeOf(id);
    res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': size });
    let offset = 0;
    const pump = () => {
      while (offset < size) {
        const n = Math.min(CHUNK, size - offset);
        const chunk = Buffer.allocUnsafe(n);
        const from = (hash32(id * 65_537 + offset / CHUNK) % (pool.length / CHUNK - 1)) * CHUNK;
        pool.copy(chunk, 0, from, from + n);
        // Every chunk names its URL and position: no two URLs share a blob.
        if (n >= 8) {
          chunk.writeUInt32LE(id, 0);
          chunk.writeUInt32LE(offset / CHUNK, 4);
        }
        offset += n;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    parentPort?.postMessage((server.address() as { port: number }).port);
  });
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'store-month-origin') runOrigin();

async function startOrigin(): Promise<{ port: number; worker: Worker }> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { role: 'store-month-origin' } });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { port, worker };
}

// ---------------------------------------------------------------------------------------------------------------
// Replay

interface Sample {
  t: number;
  storeBytes: number;
  evictedBytes: number;
  evictedBlobs: number;
  gcRuns: number;
  gcCpuSeconds: number;
}

interface Done {
  id: number;
  size: number;
  hit: boolean;
  start: number;
  end: number;
}

interface Replay {
  done: Done[];
  samples: Sample[];
  seconds: number;
  diskBytes: number;
  final: Sample;
}

function httpGet(url: string, agent: Agent): Promise<{ status: number; bytes: number; cache: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, bytes, cache: String(res.headers['x-accel-cache'] ?? '') }),
      );
      res.on('error', reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error(`no answer for 120 s: ${url}`)));
    req.on('error', reject);
  });
}

async function readMetrics(base: string, agent: Agent): Promise<Sample> {
  const text = await new Promise<string>((resolve, reject) => {
    get(`${base}/_accel/metrics`, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve(body));
      res.on('error', reject);
    }).on('error', reject);
  });
  const value = (name: string) => {
    const m = new RegExp(`^accel_mirror_${name} (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error(`/_accel/metrics has no accel_mirror_${name}:\n${text}`);
    return Number(m[1]);
  };
  return {
    t: performance.now(),
    storeBytes: value('store_bytes'),
    evictedBytes: value('store_evicted_bytes_total'),
    evictedBlobs: value('store_evicted_blobs_total'),
    gcRuns: value('store_gc_runs_total'),
    gcCpuSeconds: value('store_gc_cpu_seconds_total'),
  };
}

/** Bytes of every file under `dir`. */
function bytesUnder(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  }
  return total;
}

/**
 * `accel mirror serve --port 0` (src/main.ts) as a separate process, with its wall clock `speedup` times faster
 * when that is above 1; resolves with its URL once it listens.
 */
function startMirror(home: string, log: string, origin: string, speedup: number): Promise<Server> {
  const clock =
    speedup > 1 ? { LD_PRELOAD: FAKETIME_LIB, FAKETIME: `+0 x${speedup}`, FAKETIME_DONT_FAKE_MONOTONIC: '1' } : {};
  return startAccelMirror(home, log, ['--allow', origin], clock);
}

interface ReplayOptions {
  name: string;
  maxSize: string;
  origin: string;
  speedup: number;
}

async function replay(root: string, trace: number[], options: ReplayOptions): Promise<Replay> {
  const { name, maxSize, origin, speedup } = options;
  const home = join(root, `home-${name}`);
  mkdirSync(home);
  writeFileSync(
    join(home, 'config.json'),
    JSON.stringify({ store: { maxSize, highWater: HIGH_WATER * 100, lowWater: LOW_WATER * 100 } }),
  );
  let child: ChildProcess | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const sampler = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const mirror = await startMirror(home, join(root, `mirror-${name}.log`), origin, speedup);
    child = mirror.child;
    const base = `${mirror.url}/http/${origin}`;
    const samples: Sample[] = [];
    let running = true;
    const sampling = (async () => {
      while (running) {
        samples.push(await readMetrics(mirror.url, sampler));
        await sleep(SAMPLE_MS);
      }
    })();
    const done: Done[] = [];
    let next = 0;
    const started = performance.now();
    const client = async () => {
      while (next < trace.length) {
        const id = trace[next++] as number;
        const size = sizeOf(id);
        const start = performance.now();
        const got = await httpGet(`${base}${urlPath(id)}`, agent);
        const end = performance.now();
        if (got.status !== 200 || got.bytes !== size || (got.cache !== 'HIT' && got.cache !== 'MISS')) {
          throw new Error(
            `GET ${urlPath(id)}: ${got.status}, ${got.bytes} of ${size} bytes, x-accel-cache ${got.cache}`,
          );
        }
        done.push({ id, size, hit: got.cache === 'HIT', start, end });
        // A large new blob is where a limit is crossed, if anywhere: the response ends after the blob is
        // committed, so the size right after it shows what the admission left (sampling alone could miss it).
        if (got.cache === 'MISS' && size >= PROBE_AFTER) samples.push(await readMetrics(mirror.url, sampler));
      }
    };
    try {
      await Promise.all(Array.from({ length: CLIENTS }, client));
    } finally {
      running = false;
      await sampling;
    }
    const seconds = (performance.now() - started) / 1000;
    // A background gc the last writes started finishes before the store is measured.
    await sleep(1000);
    const final = await readMetrics(mirror.url, sampler);
    samples.push(final);
    samples.sort((a, b) => a.t - b.t);
    return { done, samples, seconds, diskBytes: bytesUnder(join(home, 'blobs')), final };
  } finally {
    agent.destroy();
    sampler.destroy();
    if (child) await stop(child);
    rmSync(home, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reference policies, simulated on the same trace

interface Rates {
  requests: number;
  bytes: number;
}

/**
 * LRU over `capacity` bytes. With `low`, gc's water marks: past `high` × capacity it evicts down to `low` ×
 * capacity, and a new blob that would cross the capacity evicts just enough first. `times`/`granularityMs`: an
 * access time kept only to that granularity on the replay's clock (an entry's recency is stale until then).
 */
function simulateLru(
  trace: readonly number[],
  capacity: number,
  options: { low?: number; times?: readonly number[]; granularityMs?: number } = {},
): Rates {
  const { low, times, granularityMs = 0 } = options;
  // Map order is eviction order: an access moves an entry to the end, so the front is the least recent.
  const cache = new Map<number, number>();
  let held = 0;
  let hits = 0;
  let hitBytes = 0;
  let allBytes = 0;
  const evictTo = (target: number) => {
    for (const [id] of cache) {
      if (held <= target) break;
      cache.delete(id);
      held -= sizeOf(id);
    }
  };
  for (const [n, id] of trace.entries()) {
    const size = sizeOf(id);
    const now = times?.[n] ?? n;
    allBytes += size;
    const last = cache.get(id);
    if (last !== undefined) {
      hits++;
      hitBytes += size;
      if (now - last >= granularityMs) {
        cache.delete(id);
        cache.set(id, now);
      }
      continue;
    }
    if (size > capacity) continue;
    evictTo(capacity - size);
    cache.set(id, now);
    held += size;
    if (low !== undefined && held > capacity * HIGH_WATER) evictTo(capacity * low);
  }
  return { requests: hits / trace.length, bytes: hitBytes / allBytes };
}

function p99(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] as number;
}

const pct = (x: number) => `${fmt(x * 100)} %`;

/** Whether a request overlapped an interval between two samples in which the store evicted something. */
function duringGc(samples: readonly Sample[]): (d: Done) => boolean {
  const busy: [number, number][] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1] as Sample;
    const b = samples[i] as Sample;
    if (b.evictedBytes > a.evictedBytes) busy.push([a.t, b.t]);
  }
  return (d) => busy.some(([from, to]) => d.start < to && d.end > from);
}

export async function benchStoreMonth(print: (line: string) => void): Promise<void> {
  print('## Store: a month of mirror traffic (`bench/store-month.ts`, `npm run bench -- store-month`)\n');
  const root = mkdtempSync(join(tmpdir(), 'accel-bench-month-'));
  let origin: { port: number; worker: Worker } | undefined;
  try {
    const trace = makeTrace();
    const distinct = [...new Set(trace)];
    const workingSet = distinct.reduce((n, id) => n + sizeOf(id), 0);
    const requestedBytes = trace.reduce((n, id) => n + sizeOf(id), 0);
    const largest = Math.max(...distinct.map(sizeOf));
    const maxBytes = Math.floor(workingSet * LIMIT_SHARE);
    origin = await startOrigin();
    const host = `127.0.0.1:${origin.port}`;

    // The month's clock needs libfaketime (Debian's faketime); without it every run keeps the real clock.
    const speedup = existsSync(FAKETIME_LIB) ? CLOCK_SPEEDUP : 1;
    const limited = await replay(root, trace, { name: 'limited', maxSize: String(maxBytes), origin: host, speedup });
    const unlimited = await replay(root, trace, { name: 'unlimited', maxSize: '1T', origin: host, speedup });
    const realClock =
      speedup > 1
        ? await replay(root, trace, { name: 'real-clock', maxSize: String(maxBytes), origin: host, speedup: 1 })
        : undefined;

    // The mirror's hits in the order requests finished (a concurrent client may reorder a few).
    const mirrorRates = (r: Replay): Rates => {
      const hits = r.done.filter((d) => d.hit);
      return {
        requests: hits.length / r.done.length,
        bytes: hits.reduce((n, d) => n + d.size, 0) / r.done.reduce((n, d) => n + d.size, 0),
      };
    };
    const mirror = mirrorRates(limited);
    const ideal = simulateLru(trace, maxBytes);
    const waterMarks = simulateLru(trace, maxBytes, { low: LOW_WATER });
    const atLow = simulateLru(trace, Math.floor(maxBytes * LOW_WATER));
    // The store's own policy on the replay's clock: water marks, and access times kept to the minute.
    const storeModel = (r: Replay, clock: number) => {
      const order = [...r.done].sort((a, b) => a.start - b.start);
      return simulateLru(
        order.map((d) => d.id),
        maxBytes,
        { low: LOW_WATER, times: order.map((d) => d.start * clock), granularityMs: TOUCH_GRANULARITY_MS },
      );
    };
    const unlimitedRates = mirrorRates(unlimited);
    const coldOnly = 1 - distinct.length / trace.length;

    const maxSampled = Math.max(...limited.samples.map((s) => s.storeBytes));
    const bound = maxBytes + largest;
    const gcGiB = limited.final.evictedBytes / GiB;
    const cpuPerGiB = gcGiB > 0 ? limited.final.gcCpuSeconds / gcGiB : Number.NaN;
    const cpuPerBlobUs = (limited.final.gcCpuSeconds * 1e6) / Math.max(1, limited.final.evictedBlobs);
    let maxGcMsInInterval = 0;
    for (let i = 1; i < limited.samples.length; i++) {
      const a = limited.samples[i - 1] as Sample;
      const b = limited.samples[i] as Sample;
      maxGcMsInInterval = Math.max(maxGcMsInInterval, (b.gcCpuSeconds - a.gcCpuSeconds) * 1000);
    }
    const probes = limited.samples.length;

    const inGc = duringGc(limited.samples);
    const smallHits = (r: Replay) => r.done.filter((d) => d.hit && d.size <= SMALL_HIT);
    const ms = (ds: Done[]) => ds.map((d) => d.end - d.start);
    const limitedSmall = smallHits(limited);
    const hitsInGc = limitedSmall.filter(inGc);
    const hitsOutGc = limitedSmall.filter((d) => !inGc(d));
    const p99In = p99(ms(hitsInGc));
    const p99Out = p99(ms(hitsOutGc));
    const p99Unlimited = p99(ms(smallHits(unlimited)));
    const p99Limited = p99(ms(limitedSmall));

    const gap = ideal.requests - mirror.requests;
    const hitGoal = gap <= 0.02;
    const sizeGoal = maxSampled <= bound && limited.diskBytes <= bound;
    const latencyGoal = p99In <= 1.2 * p99Out;
    const yes = (ok: boolean) => (ok ? 'met' : '**not met**');

    const days = (seconds: number) => fmt((seconds * speedup) / 86_400);
    const clockNote =
      speedup > 1
        ? `The mirror's wall clock ran ${speedup.toLocaleString('en')}× fast (libfaketime, \`FAKETIME_DONT_FAKE_MONOTONIC=1\`: its timers keep real time), so the store saw the trace spread over days, as in production: with the limit ${fmt(limited.seconds)} s (${days(limited.seconds)} days to the store), with \`store.maxSize\` 1T, no gc ${fmt(unlimited.seconds)} s (${days(unlimited.seconds)} days); once more with the limit on the real clock (${fmt(realClock?.seconds ?? 0)} s), where the store's once-a-minute access times span the whole replay.`
        : `The same trace ran twice on the real clock (libfaketime is not installed: \`apt-get install faketime\` gives the month's clock): with the limit ${fmt(limited.seconds)} s, with \`store.maxSize\` 1T, no gc ${fmt(unlimited.seconds)} s.`;
    const disk = sh(`df --output=source,fstype ${root} | tail -1`).trim().replace(/\s+/g, ' ');
    print(
      `Trace: ${REQUESTS.toLocaleString('en')} requests (a month at ~${Math.round(REQUESTS / 30).toLocaleString('en')}/day, replayed back to back by ` +
        `${CLIENTS} keep-alive clients) over ${URLS.toLocaleString('en')} URLs, Zipf s = ${ZIPF_S} by popularity rank; ` +
        `sizes from a bounded Pareto (α = ${PARETO_ALPHA}) from 1 KiB to 50 MiB: median ${fmt(median(distinct.map(sizeOf)) / KiB)} KiB, ` +
        `largest touched ${fmt(largest / MiB)} MiB. ${distinct.length.toLocaleString('en')} distinct URLs touched, working set ` +
        `${fmt(workingSet / GiB, 2)} GiB, ${fmt(requestedBytes / GiB, 2)} GiB requested. Scaled to fit this machine: the ` +
        'issue\'s "1 KB to 50 MB" log-uniform would average ~4.6 MiB a URL (a working set of tens of GiB for the same ' +
        'requests); the heavy tail keeps the range and puts most URLs at a few KiB. ' +
        `Store limit ${fmt(maxBytes / MiB)} MiB (${LIMIT_SHARE * 100} % of the working set), high/low water ${HIGH_WATER * 100}/${LOW_WATER * 100} %. ` +
        `An origin on 127.0.0.1 (a worker thread, bytes generated per request) behind \`accel mirror serve\` (a separate Node ` +
        `${process.versions.node} process, \`src/main.ts\`); data on ${disk}; ${sh('nproc').trim()} cores shared with the load ` +
        `generator. ${clockNote}\n`,
    );
    print('| measurement | value | reference | goal |');
    print('| --- | ---: | ---: | --- |');
    print(
      `| hit rate, requests: mirror vs ideal LRU at the limit | ${pct(mirror.requests)} | ${pct(ideal.requests)} | within 2 points: ${yes(hitGoal)} (${fmt(gap * 100)} points below) |`,
    );
    print(`| hit rate, bytes: mirror vs ideal LRU at the limit | ${pct(mirror.bytes)} | ${pct(ideal.bytes)} | |`);
    print(
      `| LRU between the water marks (${HIGH_WATER * 100}→${LOW_WATER * 100} %) / LRU at the low-water size | ${pct(waterMarks.requests)} | ${pct(atLow.requests)} | |`,
    );
    print(
      `| model of the store's policy on the mirror's clock (water marks, access time kept to the minute) | ${pct(storeModel(limited, speedup).requests)} | ${pct(ideal.requests)} | |`,
    );
    if (realClock) {
      print(
        `| real clock (the trace in ${fmt(realClock.seconds, 0)} s): mirror / model of the store's policy | ${pct(mirrorRates(realClock).requests)} | ${pct(storeModel(realClock, 1).requests)} | |`,
      );
    }
    print(`| no limit: mirror / only cold misses | ${pct(unlimitedRates.requests)} | ${pct(coldOnly)} | |`);
    print(
      `| store size, max of ${probes} samples (every ${SAMPLE_MS} ms and after each miss ≥ ${PROBE_AFTER / MiB} MiB) vs limit + largest blob | ${fmt(maxSampled / MiB)} MiB | ${fmt(bound / MiB)} MiB | ${yes(maxSampled <= bound)} (limit ${fmt(maxBytes / MiB)} MiB${maxSampled > maxBytes ? ', crossed' : ', never crossed'}) |`,
    );
    print(
      `| files under blobs/ at the end vs limit + largest blob | ${fmt(limited.diskBytes / MiB)} MiB | ${fmt(bound / MiB)} MiB | ${yes(limited.diskBytes <= bound)} |`,
    );
    print(
      `| gc: passes, blobs and GiB evicted | ${limited.final.gcRuns} passes, ${limited.final.evictedBlobs.toLocaleString('en')} blobs | ${fmt(gcGiB, 2)} GiB | |`,
    );
    print(
      `| gc main-thread CPU per GiB evicted | ${fmt(cpuPerGiB, 3)} s | ${fmt(limited.final.gcCpuSeconds, 2)} s in all, ${fmt(cpuPerBlobUs, 0)} µs a blob; at most ${fmt(maxGcMsInInterval, 1)} ms between two samples | |`,
    );
    print(
      `| p99 of hits ≤ 1 MiB, during gc vs not (same run; ${hitsInGc.length.toLocaleString('en')} / ${hitsOutGc.length.toLocaleString('en')} hits) | ${fmt(p99In, 2)} ms | ${fmt(p99Out, 2)} ms | ≤ 1.2×: ${yes(latencyGoal)} (${fmt(p99In / p99Out, 2)}×) |`,
    );
    print(
      `| p99 of hits ≤ 1 MiB, with the limit vs without (two runs) | ${fmt(p99Limited, 2)} ms | ${fmt(p99Unlimited, 2)} ms | ${fmt(p99Limited / p99Unlimited, 2)}× |`,
    );
    print('');
    print(
      `- goals: hit rate within 2 points of ideal LRU — ${yes(hitGoal)}; size never above the limit plus one blob — ${yes(sizeGoal)}; p99 during gc ≤ 1.2× without — ${yes(latencyGoal)}`,
    );
    print(
      `- "during gc": a hit whose time overlaps a ${SAMPLE_MS} ms sampling interval in which \`accel_mirror_store_evicted_bytes_total\` grew (a background pass or a write's inline eviction); latency is request start to last byte at the client, hits only (a miss waits for the origin)`,
    );
    print(
      `- hit rates count \`X-Accel-Cache: HIT\` responses; the goal is judged on the ${speedup > 1 ? "month's clock" : 'real clock'} run. ideal LRU: exact recency, in trace order, evicting only what a new blob needs; the mirror sees the trace from concurrent clients, so a few requests reorder (two concurrent first requests of one URL are both misses)`,
    );
    print('');
  } finally {
    await origin?.worker.terminate();
    rmSync(root, { recursive: true, force: true });
  }
}
