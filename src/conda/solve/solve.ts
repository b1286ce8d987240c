import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { release } from 'node:os';
import { join } from 'node:path';
import { AccelError } from '../../core/errors.ts';
import { type ChannelPackage, indexRepodata, localRepodata, type RepodataIndex } from '../builder/channel-packages.ts';
import type { UpstreamChannel } from './upstream.ts';

/**
 * A channel as the solver sees it: its records per subdir, and where a package it chose is. The solver is
 * rattler's (resolvo, conda's match-spec and version semantics), run as WebAssembly: its JavaScript API fetches
 * repodata by URL, so each solve serves the records it can need from memory on a loopback port of its own (the
 * wasm never reaches the network; an upstream's repodata came through accel's fetcher, its guards and the store).
 */
export interface SolverChannel {
  /** What messages call it: a directory, or the upstream's URL. */
  label: string;
  /** The subdir's records by name; null when the channel has none. */
  index(subdir: string): Promise<RepodataIndex | null>;
  /** The package the solver chose, with where its file is. */
  locate(subdir: string, filename: string, sha256: string): Pick<ChannelPackage, 'path' | 'url'>;
}

/** A local channel directory (`--channel`), as conda build writes and indexes it. */
export function localChannel(dir: string): SolverChannel {
  return {
    label: dir,
    index: async (subdir) => {
      const bytes = localRepodata(dir, subdir);
      return bytes ? indexRepodata(bytes, join(dir, subdir, 'repodata.json')) : null;
    },
    locate: (subdir, filename) => ({ path: join(dir, subdir, filename) }),
  };
}

/** An upstream channel: its repodata fetched (or remembered) by UpstreamChannel. */
export function upstreamChannel(upstream: UpstreamChannel): SolverChannel {
  return {
    label: upstream.url,
    index: (subdir) => upstream.index(subdir),
    locate: (subdir, filename, sha256) => {
      const url = `${upstream.url}/${subdir}/${filename}`;
      return { path: upstream.placeOf(sha256, filename), url };
    },
  };
}

/** Packages not in any channel yet (built in this run, before they are published), as a channel of their own. */
export function stagedChannel(label: string, packages: ChannelPackage[]): SolverChannel {
  return {
    label,
    index: async (subdir) => {
      const index: RepodataIndex = new Map();
      for (const p of packages.filter((x) => x.subdir === subdir)) {
        const record = {
          name: p.name,
          version: p.version,
          build: p.build,
          build_number: p.build_number,
          depends: p.depends,
          sha256: p.sha256,
          subdir: p.subdir,
          timestamp: p.timestamp,
        };
        index.set(p.name, [...(index.get(p.name) ?? []), { filename: p.filename, table: 'packages.conda', record }]);
      }
      return index;
    },
    locate: (_subdir, filename) => {
      const p = packages.find((s) => s.filename === filename) as ChannelPackage;
      return { path: p.path };
    },
  };
}

/**
 * The machine an environment runs on, as conda's virtual packages say it: `{ __glibc: '2.31' }`. `__unix`,
 * `__linux` (this kernel's release) and `__archspec` are added for a linux target when not given.
 */
export type VirtualPackages = Readonly<Record<string, string>>;

export interface SolveRequest {
  /** What the environment is for, in messages: `zlib-1.3.1-h0_0: the test environment`. */
  what: string;
  specs: string[];
  /** In priority order (conda's strict channel priority: a name found in an earlier channel comes from it). */
  channels: SolverChannel[];
  /** The subdirs searched in each channel, e.g. linux-aarch64 and noarch. */
  subdirs: string[];
  virtual: VirtualPackages;
  /** What to do about an unsatisfiable request; by default, conda build's. */
  hint?: string;
}

/** The packages of the environment (virtual packages left out), sorted by name. */
export async function solveEnvironment(req: SolveRequest): Promise<ChannelPackage[]> {
  if (req.specs.length === 0) return [];
  const rattler = await import('@conda-org/rattler');
  // A channel whose repodata cannot be had fails the solve with its own error (fetch, guard, offline).
  const served = await serveRepodata(req.channels, req.subdirs, req.specs);
  try {
    const target = req.subdirs.find((s) => s !== 'noarch') ?? 'noarch';
    const locked = virtualRecords(req.virtual, target, served.base);
    let solved: Awaited<ReturnType<typeof rattler.simpleSolve>>;
    try {
      solved = await rattler.simpleSolve(
        req.specs,
        req.channels.map((_c, i) => `${served.base}/c${i}`),
        req.subdirs as Parameters<typeof rattler.simpleSolve>[2],
        locked,
      );
    } catch (err) {
      throw unsatisfiable(req, served.base, err);
    }
    const out: ChannelPackage[] = [];
    for (const s of solved) {
      if (s.packageName.startsWith('__')) continue;
      const m = /\/c(\d+)\/([^/]+)\/([^/]+)$/.exec(s.url);
      const channel = m ? req.channels[Number(m[1])] : undefined;
      if (!m || !channel) throw new Error(`rattler chose a package from no channel it was given: ${s.url}`);
      const subdir = m[2] as string;
      const sha256 = s.sha256 ?? '';
      out.push({
        subdir,
        filename: s.filename,
        name: s.packageName,
        version: s.version,
        build: s.build,
        build_number: Number(s.buildNumber ?? 0),
        depends: s.depends ?? [],
        sha256,
        timestamp: 0,
        channel: channel.label,
        ...channel.locate(subdir, s.filename, sha256),
      });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  } finally {
    served.close();
  }
}

/** conda's virtual packages of a linux machine, as installed records (rattler takes them so). */
function virtualRecords(given: VirtualPackages, target: string, base: string) {
  const all: Record<string, { version: string; build: string }> = {};
  for (const [name, version] of Object.entries(given)) all[name] = { version, build: '0' };
  if (target.startsWith('linux-')) {
    all.__unix ??= { version: '0', build: '0' };
    all.__linux ??= { version: /^\d+(\.\d+)*/.exec(release())?.[0] ?? '0', build: '0' };
    const cpu = target === 'linux-64' ? 'x86_64' : target.slice('linux-'.length);
    all.__archspec ??= { version: '1', build: cpu };
  }
  return Object.entries(all).map(([name, v]) => ({
    url: `${base}/virtual/${name}-${v.version}-${v.build}.conda`,
    packageName: name,
    version: v.version,
    build: v.build,
    buildNumber: 0,
    filename: `${name}-${v.version}-${v.build}.conda`,
    subdir: target,
    depends: [],
  }));
}

/**
 * The channels' repodata on 127.0.0.1, port 0: `/c<i>/<subdir>/repodata.json`, everything else 404. Each holds
 * only the records of the names the specs can reach through dependencies in any channel (what conda's sharded
 * repodata gives a client): rattler parses kilobytes per solve, not a channel of conda-forge's size.
 */
async function serveRepodata(
  channels: SolverChannel[],
  subdirs: string[],
  specs: string[],
): Promise<{ base: string; close(): void }> {
  const indexes = await Promise.all(channels.map((c) => Promise.all(subdirs.map((s) => c.index(s)))));
  const reach = reachable(specs, indexes.flat());
  const bodies = new Map<string, Buffer>();
  channels.forEach((_c, i) => {
    subdirs.forEach((subdir, j) => {
      const tables: Record<'packages' | 'packages.conda', Record<string, unknown>> = {
        packages: {},
        'packages.conda': {},
      };
      const index = indexes[i]?.[j];
      for (const name of reach) {
        for (const e of index?.get(name) ?? []) tables[e.table][e.filename] = e.record;
      }
      bodies.set(`/c${i}/${subdir}/repodata.json`, Buffer.from(JSON.stringify({ info: { subdir }, ...tables })));
    });
  });
  const server: Server = createServer((req, res) => {
    const body = bodies.get(req.url ?? '');
    if (!body || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Package names the specs reach through every record's depends, in any of the indexes. */
function reachable(specs: string[], indexes: (RepodataIndex | null)[]): Set<string> {
  const seen = new Set<string>();
  const queue = specs.map(matchSpecName);
  for (let name = queue.pop(); name !== undefined; name = queue.pop()) {
    if (seen.has(name)) continue;
    seen.add(name);
    for (const index of indexes) {
      for (const e of index?.get(name) ?? []) {
        for (const d of (e.record.depends as string[] | undefined) ?? []) {
          const n = matchSpecName(d);
          if (!seen.has(n)) queue.push(n);
        }
      }
    }
  }
  return seen;
}

/** The package name of a match spec: `zlib >=1.3`, `zlib>=1.3`, `conda-forge::zlib 1.3.*`, `zlib[version='>=1']`. */
function matchSpecName(spec: string): string {
  const bare = spec.trim().replace(/^[^\s:]*::/, '');
  return /^[^\s=<>!~[;]+/.exec(bare)?.[0]?.toLowerCase() ?? bare;
}

function unsatisfiable(req: SolveRequest, base: string, err: unknown): AccelError {
  const raw = err instanceof Error ? err.message : String(err);
  // rattler names packages by the URLs it was given: put the channels' own names back.
  const message = raw.replace(new RegExp(`${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/c(\\d+)`, 'g'), (_m, i) => {
    return req.channels[Number(i)]?.label ?? _m;
  });
  const searched = req.channels.map((c) => `${c.label} (${req.subdirs.join(', ')})`).join('; ');
  const machine = Object.entries(req.virtual)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return new AccelError(
    'ACCEL_CONDA_UNSATISFIABLE',
    `${req.what} cannot be solved: ${req.specs.join(', ')}\n${message.trim()}\n  channels searched, in priority order: ${searched}${machine ? `\n  the machine: ${machine}` : ''}`,
    {
      hint:
        req.hint ??
        'build what is missing into the local channel first, or name a channel that has it with --upstream-channel URL',
      cause: err,
    },
  );
}
