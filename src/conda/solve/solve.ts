import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { release } from 'node:os';
import { join } from 'node:path';
import { AccelError } from '../../core/errors.ts';
import { type ChannelPackage, localRepodata } from '../builder/channel-packages.ts';
import type { UpstreamChannel } from './upstream.ts';

/**
 * A channel as the solver sees it: its repodata per subdir, and where a package it chose is. The solver is
 * rattler's (resolvo, conda's match-spec and version semantics), run as WebAssembly: its JavaScript API fetches
 * repodata by URL, so each solve serves the channels' repodata from memory on a loopback port of its own (the
 * wasm never reaches the network; an upstream's repodata came through accel's fetcher, its guards and the store).
 */
export interface SolverChannel {
  /** What messages call it: a directory, or the upstream's URL. */
  label: string;
  /** The subdir's repodata.json; null when the channel has none. */
  repodata(subdir: string): Promise<Buffer | null>;
  /** The package the solver chose, with where its file is. */
  locate(subdir: string, filename: string, sha256: string): Pick<ChannelPackage, 'path' | 'url'>;
}

/** A local channel directory (`--channel`), as conda build writes and indexes it. */
export function localChannel(dir: string): SolverChannel {
  return {
    label: dir,
    repodata: async (subdir) => localRepodata(dir, subdir),
    locate: (subdir, filename) => ({ path: join(dir, subdir, filename) }),
  };
}

/** An upstream channel: its repodata fetched (or remembered) by UpstreamChannel. */
export function upstreamChannel(upstream: UpstreamChannel): SolverChannel {
  return {
    label: upstream.url,
    repodata: (subdir) => upstream.repodata(subdir),
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
    repodata: async (subdir) => {
      const records = Object.fromEntries(
        packages
          .filter((p) => p.subdir === subdir)
          .map((p) => [
            p.filename,
            {
              name: p.name,
              version: p.version,
              build: p.build,
              build_number: p.build_number,
              depends: p.depends,
              sha256: p.sha256,
              subdir: p.subdir,
              timestamp: p.timestamp,
            },
          ]),
      );
      return Buffer.from(JSON.stringify({ info: { subdir }, packages: {}, 'packages.conda': records }));
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
  const served = await serveRepodata(req.channels);
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
      // A channel whose repodata could not be had fails the solve with its own error (fetch, guard, offline).
      if (served.failures.length > 0) throw served.failures[0];
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

/** The channels' repodata on 127.0.0.1, port 0: `/c<i>/<subdir>/repodata.json`, everything else 404. */
async function serveRepodata(channels: SolverChannel[]): Promise<{ base: string; failures: unknown[]; close(): void }> {
  const server: Server = createServer((req, res) => {
    const m = /^\/c(\d+)\/([A-Za-z0-9_-]+)\/repodata\.json$/.exec(req.url ?? '');
    const channel = m ? channels[Number(m[1])] : undefined;
    if (!m || !channel || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404).end();
      return;
    }
    channel.repodata(m[2] as string).then(
      (bytes) => {
        const body = bytes ?? Buffer.from(`{"info":{"subdir":"${m[2]}"},"packages":{},"packages.conda":{}}`);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        failures.push(err);
        res.writeHead(502).end();
      },
    );
  });
  const failures: unknown[] = [];
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    failures,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
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
