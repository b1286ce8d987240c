// The conda solver (rattler's resolvo as WebAssembly, src/conda/solve/solve.ts) on a channel of conda-forge's
// size, issue 31's goal: a solve over 100,000 records takes ≤ 2 s. The seeded channel of synthetic-channel.ts
// (100,000 linux-aarch64 records, 10,000 noarch) is served as repodata.json.zst by a fake upstream on 127.0.0.1,
// read through UpstreamChannel into a temp store, and solved for one package with no dependencies (the floor:
// serving and parsing the index), a leaf, a 20-spec environment and an unsatisfiable request: cold (a fresh process: wasm compile, fetch into the store, decompress), warm (the same channel
// object), and from the store (a new channel object, 304 on revalidation).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { solveEnvironment, upstreamChannel } from '../src/conda/solve/solve.ts';
import { UpstreamChannel } from '../src/conda/solve/upstream.ts';
import { isAccelError } from '../src/core/errors.ts';
import { silentLog } from '../src/core/log.ts';
import { Store } from '../src/store/store.ts';
import { startFakeUpstream } from '../test/fake-upstream.ts';
import { type Kind, type Name, prng, repodataJson, syntheticChannel, TARGET } from './synthetic-channel.ts';
import { fmt, median } from './util.ts';

const SUBDIRS = [TARGET, 'noarch'];
const WARM = 5;
const VIRTUAL = { __glibc: '2.31' };

interface Request {
  what: string;
  specs: string[];
  /** Whether the request must fail as unsatisfiable. */
  unsat?: boolean;
}

/** The three requests, chosen from the channel by its shape (deterministic with the channel). */
export function requestsOf(channel: ReturnType<typeof syntheticChannel>): { requests: Request[]; depth: number } {
  const { names, records } = channel;
  const rand = prng(99);
  const used = new Set<Name>(names.flatMap((n) => n.deps.map((d) => d.target)));
  const linux = names.filter((n) => n.subdir === TARGET && n.deps.length >= 3);
  const leaf = linux.filter((n) => !used.has(n)).at(-1) as Name;
  // (b): python 3.12 and 19 names from the newest 3,000 (deps point to lower indexes, so these sit on the
  // longest chains): 11 libraries, 4 python extensions, 4 noarch packages, 3 of them held to an older version.
  const top = names.filter((n) => n.index >= names.length - 3000 && n.deps.length >= 2);
  const take = (kind: Kind, k: number) => {
    const pool = top.filter((n) => n.kind === kind);
    const out: Name[] = [];
    while (out.length < k) {
      const n = pool[Math.floor(rand() * pool.length)] as Name;
      if (!out.includes(n)) out.push(n);
    }
    return out;
  };
  const env = [...take('lib', 11), ...take('pyext', 4), ...take('noarch', 4)];
  const envSpecs = env.map((n, i) =>
    i % 6 === 0 && n.versions.length > 1
      ? `${n.name} >=${(n.versions[n.versions.length >> 1] as { v: number[] }).v.join('.')}`
      : n.name,
  );
  const depthOf = new Map<Name, number>();
  const depth = (n: Name): number => {
    let d = depthOf.get(n);
    if (d === undefined) {
      d = 1 + Math.max(0, ...n.deps.map((x) => depth(x.target)));
      depthOf.set(n, d);
    }
    return d;
  };
  // (c): the leaf's newest version pins D1, every D1 in that range pins D2 at or above some version: asking for
  // D2 below it is unsatisfiable, through a chain of two pins (and every other dependency of the leaf).
  const unsat = (() => {
    for (const l of [...linux].reverse()) {
      const newest = (records.get(l) ?? []).filter((r) => r.vi === l.versions.length - 1);
      for (const { target: d1 } of l.deps.filter((d) => d.form === 'pin')) {
        const lo = Math.min(...newest.map((r) => r.pins.get(d1) ?? 0));
        const major = (d1.versions[lo] as { v: number[] }).v;
        const inRange = (records.get(d1) ?? []).filter((r) => {
          const v = (d1.versions[r.vi] as { v: number[] }).v;
          return r.vi >= lo && (major[0] ? v[0] === major[0] : v[0] === 0 && v[1] === major[1]);
        });
        for (const { target: d2 } of d1.deps.filter((d) => d.form === 'pin')) {
          const floor = Math.min(...inRange.map((r) => r.pins.get(d2) ?? 0));
          if (floor < 2) continue;
          const v = (l.versions[l.versions.length - 1] as { v: number[] }).v.join('.');
          return [`${l.name} ==${v}`, `${d2.name} <${(d2.versions[floor] as { v: number[] }).v.join('.')}`];
        }
      }
    }
    throw new Error('the synthetic channel has no chain of two pins');
  })();
  return {
    requests: [
      { what: 'the floor: one package with no dependencies', specs: ['python_abi 3.12.*'] },
      { what: `(a) one leaf package, ${leaf.name}`, specs: [leaf.name] },
      { what: '(b) an environment of 20 specs', specs: ['python 3.12.*', ...envSpecs] },
      { what: '(c) unsatisfiable through two pins', specs: unsat, unsat: true },
    ],
    depth: Math.max(...env.map(depth)),
  };
}

/** What one child process measured: a solve in a fresh process, or its phases. */
interface ChildResult extends Timed {
  phases?: { importMs: number; fetchMs: number; floorMs: number; floor2Ms: number; solveMs: number };
}

/** One solve through a fresh store and channel object; the outcome checked, so an error is never timed as a solve. */
interface Timed {
  /** Wall time; cpuMs: this process's CPU time (user + system) meanwhile, which other load on the machine inflates far less. */
  ms: number;
  cpuMs: number;
  packages: number;
  code?: string;
}

async function solveOnce(ch: UpstreamChannel, req: Request): Promise<Timed> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const cpuMs = () => {
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000;
  };
  try {
    const solved = await solveEnvironment({
      what: req.what,
      specs: req.specs,
      channels: [upstreamChannel(ch)],
      subdirs: SUBDIRS,
      virtual: VIRTUAL,
    });
    const ms = performance.now() - t0;
    const cpu = cpuMs();
    if (req.unsat) throw new Error(`${req.what}: solved, but it was meant to be unsatisfiable`);
    for (const s of req.specs) {
      const name = s.split(' ')[0] as string;
      if (!solved.some((p) => p.name === name)) throw new Error(`${req.what}: ${name} is not in the solution`);
    }
    return { ms, cpuMs: cpu, packages: solved.length };
  } catch (err) {
    const ms = performance.now() - t0;
    const cpu = cpuMs();
    if (req.unsat && isAccelError(err) && err.code === 'ACCEL_CONDA_UNSATISFIABLE')
      return { ms, cpuMs: cpu, packages: 0, code: err.code };
    throw err;
  }
}

function openChannel(store: Store, url: string, port: number): UpstreamChannel {
  return new UpstreamChannel(url, { store, mirror: '', allow: [`127.0.0.1:${port}`], stallMs: 60_000, log: silentLog });
}

/** In a fresh process: the first solve (wasm compile, fetch into an empty store, decompress), or its phases. */
async function child(arg: { url: string; port: number; req: Request; phases: boolean }): Promise<ChildResult> {
  const home = mkdtempSync(join(tmpdir(), 'accel-bench-solve-'));
  const store = Store.open({ home });
  try {
    const ch = openChannel(store, arg.url, arg.port);
    if (!arg.phases) return await solveOnce(ch, arg.req);
    const t0 = performance.now();
    await import('@conda-org/rattler');
    const t1 = performance.now();
    await Promise.all(SUBDIRS.map((s) => ch.index(s)));
    const t2 = performance.now();
    const floor = { what: 'a package with no dependencies', specs: ['python_abi 3.12.*'] };
    const first = await solveOnce(ch, floor);
    const second = await solveOnce(ch, floor);
    const solved = await solveOnce(ch, arg.req);
    const phases = { importMs: t1 - t0, fetchMs: t2 - t1, floorMs: first.ms, floor2Ms: second.ms, solveMs: solved.ms };
    return { ...solved, ms: performance.now() - t0, phases };
  } finally {
    store.close();
    rmSync(home, { recursive: true, force: true });
  }
}

export async function benchCondaSolve(print: (line: string) => void): Promise<void> {
  print(
    "## The conda solver on a channel of conda-forge's size (`bench/conda-solve.ts`, `npm run bench -- conda-solve`)\n",
  );
  const g0 = performance.now();
  const channel = syntheticChannel();
  const json = Object.fromEntries(SUBDIRS.map((s) => [s, repodataJson(channel, s)])) as Record<string, Buffer>;
  const zst = Object.fromEntries(SUBDIRS.map((s) => [s, zstdCompressSync(json[s] as Buffer)])) as Record<
    string,
    Buffer
  >;
  const genMs = performance.now() - g0;
  const { requests, depth } = requestsOf(channel);
  const up = await startFakeUpstream();
  for (const s of SUBDIRS) up.files.set(`/cf/${s}/repodata.json.zst`, { body: zst[s] as Buffer, etag: `"${s}-1"` });
  const url = `http://${up.origin}/cf`;
  const home = mkdtempSync(join(tmpdir(), 'accel-bench-solve-'));
  const store = Store.open({ home });
  const runChild = async (req: Request, phases: boolean): Promise<ChildResult> => {
    const arg = JSON.stringify({ url, port: up.port, req, phases });
    const { stdout } = await promisify(execFile)(process.execPath, [import.meta.filename, '--child', arg], {
      maxBuffer: 1 << 20,
    });
    return JSON.parse(stdout) as ChildResult;
  };
  try {
    const rows: string[] = [];
    let phases: ChildResult['phases'];
    for (const req of requests) {
      const colds = [await runChild(req, false), await runChild(req, false), await runChild(req, false)];
      const cold = colds[0] as ChildResult;
      // Warm: one channel object, its repodata fetched once; each solve serves and parses it again.
      const ch = openChannel(store, url, up.port);
      await solveOnce(ch, req);
      const warm: Timed[] = [];
      for (let i = 0; i < WARM; i++) warm.push(await solveOnce(ch, req));
      // From the store: a new channel object per solve, its conditional GET answered 304.
      const before = up.requests.filter((r) => r.headers['if-none-match']).length;
      const stored: Timed[] = [];
      for (let i = 0; i < WARM; i++) stored.push(await solveOnce(openChannel(store, url, up.port), req));
      const revalidated = up.requests.filter((r) => r.headers['if-none-match']).length - before;
      if (revalidated !== WARM * SUBDIRS.length)
        throw new Error(`expected ${WARM * SUBDIRS.length} revalidations, saw ${revalidated}`);
      const outcome = cold.code ?? `${cold.packages} packages`;
      rows.push(
        `| ${req.what} | ${req.specs.length} | ${outcome} | ${both(colds)} | ${both(warm)} | ${both(stored)} |`,
      );
      if (req.specs.length > 2 && !req.unsat) phases = (await runChild(req, true)).phases;
    }
    // Reference costs on the node side, for where the time goes: one loopback GET of the JSON, JSON.parse.
    const ref = await referenceMs(json[TARGET] as Buffer);
    const records = SUBDIRS.map(
      (s) => `${s} ${[...channel.records].filter(([n]) => n.subdir === s).reduce((k, [, r]) => k + r.length, 0)}`,
    );
    const namesOf = (s: string) => channel.names.filter((n) => n.subdir === s).length;
    const mb = (b: Buffer | undefined) => fmt((b?.length ?? 0) / 1e6, 1);
    print(
      `The channel (seeded, built in ${fmt(genMs / 1000, 1)} s): records ${records.join(', ')}; names ${TARGET} ${namesOf(TARGET)}, noarch ${namesOf('noarch')}.`,
    );
    print(
      `repodata.json ${TARGET} ${mb(json[TARGET])} MB (.zst ${mb(zst[TARGET])} MB), noarch ${mb(json.noarch)} MB (.zst ${mb(zst.noarch)} MB).`,
    );
    print(`Request (b): ${requests[2]?.specs.join(', ')}; its longest dependency chain is ${depth} names.`);
    print(`Request (c): ${requests[3]?.specs.join(', ')}.\n`);
    print(
      '| request | specs | outcome | cold ms, wall / CPU (fresh process, median of 3) | warm ms, wall / CPU (median of 5) | from the store, 304: ms, wall / CPU (median of 5) |',
    );
    print('| --- | ---: | --- | ---: | ---: | ---: |');
    for (const r of rows) print(r);
    if (phases) {
      print(
        `\nRequest (b) cold, by phase: import rattler (wasm compile) ${fmt(phases.importMs, 0)} ms; fetch both subdirs into the store, decompress and index them by name (JSON.parse) ${fmt(phases.fetchMs, 0)} ms; the process's first solve, of one package with no dependencies (its reachable records served on loopback; rattler's first run) ${fmt(phases.floorMs, 0)} ms, the same again ${fmt(phases.floor2Ms, 0)} ms; then the request itself ${fmt(phases.solveMs, 0)} ms.`,
      );
    }
    print(
      `Node alone, ${TARGET}: a loopback GET of the JSON ${fmt(ref.getMs, 0)} ms, JSON.parse ${fmt(ref.parseMs, 0)} ms, zstd decompress ${fmt(ref.unzstdMs, 0)} ms.`,
    );
  } finally {
    store.close();
    await up.close();
    rmSync(home, { recursive: true, force: true });
  }
}

/** Median wall and median CPU ms: `812 / 640`. */
function both(runs: Timed[]): string {
  return `${fmt(median(runs.map((r) => r.ms)), 0)} / ${fmt(median(runs.map((r) => r.cpuMs)), 0)}`;
}

async function referenceMs(json: Buffer): Promise<{ getMs: number; parseMs: number; unzstdMs: number }> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-length': json.length }).end(json));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    const get: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await (await fetch(`http://127.0.0.1:${port}/`)).arrayBuffer();
      get.push(performance.now() - t0);
    }
    const t1 = performance.now();
    JSON.parse(json.toString('utf8'));
    const parseMs = performance.now() - t1;
    const packed = zstdCompressSync(json);
    const t2 = performance.now();
    zstdDecompressSync(packed);
    return { getMs: median(get), parseMs, unzstdMs: performance.now() - t2 };
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

if (import.meta.main && process.argv[2] === '--child') {
  process.stdout.write(JSON.stringify(await child(JSON.parse(process.argv[3] as string))));
}
