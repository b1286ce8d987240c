// apt-get through the accel mirror beside apt-cacher-ng, both in front of one local signed archive: update and
// download of a dependency chain cold and warm, what reaches the upstream, and what still works once it is gone.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  APT_TOOLS,
  type ArchiveServer,
  aptGet,
  buildAptRepo,
  debsDownloaded,
  type FakePackage,
  startArchiveServer,
} from '../test/apt-fixture.ts';
import { canConnect, type Server, startAccelMirror, stop, waitUntil } from './servers.ts';
import { fmt, has, median, sh } from './util.ts';

const ACNG = '/usr/sbin/apt-cacher-ng';
const MB = 2 ** 20;
const SUITE = 'bench';
const REMAP = 'test';
const CHAIN = 40;
/** Random (incompressible) payload by position in the chain; every other package holds only a README. */
const PAYLOADS = new Map([
  [5, 1 * MB],
  [12, 2 * MB],
  [20, 3 * MB],
  [28, 4 * MB],
  [35, 5 * MB],
]);
/** Each round starts both caches empty: one cold run, then one warm run, through each. */
const ROUNDS = 3;

const pkgName = (i: number) => `bench-${String(i).padStart(2, '0')}`;
const TOP = pkgName(0);

interface Archive {
  dir: string;
  keyring: string;
  debBytes: number;
}

interface Traffic {
  requests: number;
  /** Requests for a path already asked for in the same run. */
  repeats: number;
  bytes: number;
}

/** One cache's runs: wall ms and upstream traffic, one entry per round. */
interface Runs {
  coldMs: number[];
  cold: Traffic[];
  warmMs: number[];
  warm: Traffic[];
}

interface AptRun {
  ms: number;
  debs: number;
  /** Empty when update was clean and install downloaded the whole chain. */
  failure: string;
}

interface Row {
  what: string;
  accel: number;
  acng: number;
  digits: number;
}

export async function benchApt(print: (line: string) => void): Promise<void> {
  print('## apt (`bench/apt.ts`)\n');
  const missing = APT_TOOLS.filter((tool) => !has(tool));
  if (missing.length > 0) {
    print(`skipped: ${missing.join(', ')} not installed (bash scripts/setup.sh --test installs them)\n`);
    return;
  }
  if (!existsSync(ACNG)) {
    print('skipped: apt-cacher-ng is not installed (`apt-get install apt-cacher-ng`)\n');
    return;
  }
  const root = mkdtempSync(join(tmpdir(), 'accel-bench-apt-'));
  const children: ChildProcess[] = [];
  let upstream: ArchiveServer | undefined;
  let relay: Relay | undefined;
  try {
    const archive = await buildArchive(root);
    upstream = await startArchiveServer(archive.dir);
    relay = await startRelay(upstream.port);
    const upstreamUrl = `http://${relay.origin}/`;
    const sources = (url: string, path: string) => `deb [signed-by=${archive.keyring}] ${url}/${path}/ ${SUITE} main\n`;
    const viaAccel = (s: Server) => sources(s.url, `r/${REMAP}`);
    const viaAcng = (s: Server) => sources(s.url, REMAP);

    const server = upstream;
    const link = relay;
    const measured = async (sourcesList: string, ms: number[], traffic: Traffic[]): Promise<void> => {
      const requestsBefore = server.requests.length;
      const bytesBefore = link.bytesDown();
      const run = await updateAndDownload(root, sourcesList);
      if (run.failure) throw new Error(`apt-get through ${sourcesList.trim()} failed: ${run.failure}`);
      const paths = server.requests.slice(requestsBefore).map((r) => r.path);
      ms.push(run.ms);
      traffic.push({
        requests: paths.length,
        repeats: paths.length - new Set(paths).size,
        bytes: link.bytesDown() - bytesBefore,
      });
    };
    const runs = () => ({ coldMs: [], cold: [], warmMs: [], warm: [] });
    const a: Runs = runs();
    const b: Runs = runs();
    let home = '';
    let accel: Server | undefined;
    let acng: Server | undefined;
    for (let round = 0; round < ROUNDS; round++) {
      if (accel) await stop(accel.child);
      if (acng) await stop(acng.child);
      home = join(root, `accel-${round}`);
      accel = await startAccel(home, relay.origin, false);
      children.push(accel.child);
      acng = await startAcng(join(root, `acng-${round}`), upstreamUrl, false);
      children.push(acng.child);
      // Alternating, so that drift on the machine does not favour one side.
      await measured(viaAccel(accel), a.coldMs, a.cold);
      await measured(viaAcng(acng), b.coldMs, b.cold);
      await measured(viaAccel(accel), a.warmMs, a.warm);
      await measured(viaAcng(acng), b.warmMs, b.warm);
    }
    if (!accel || !acng) throw new Error('no rounds');

    // Offline: the upstream is gone; accel is told so, apt-cacher-ng keeps the configuration it ran with.
    const origin = relay.origin;
    await relay.close();
    relay = undefined;
    await upstream.close();
    upstream = undefined;
    await stop(accel.child);
    accel = await startAccel(home, origin, true);
    children.push(accel.child);
    const offlineAccel = await updateAndDownload(root, viaAccel(accel));
    const offlineAcng = await updateAndDownload(root, viaAcng(acng));
    // apt-cacher-ng's own offline switch, on the same cache, for a like-for-like comparison.
    await stop(acng.child);
    acng = await startAcng(join(root, `acng-${ROUNDS - 1}`), upstreamUrl, true);
    children.push(acng.child);
    const offlineAcngFlag = await updateAndDownload(root, viaAcng(acng));

    const row = (what: string, digits: number, pick: (r: Runs) => number): Row => ({
      what,
      accel: pick(a),
      acng: pick(b),
      digits,
    });
    const sum = (traffic: Traffic[], pick: (t: Traffic) => number) => traffic.reduce((n, t) => n + pick(t), 0);
    const rows: Row[] = [
      row('cold: update + install, wall s', 2, (r) => median(r.coldMs) / 1000),
      row('cold: upstream requests', 0, (r) => median(r.cold.map((t) => t.requests))),
      row('cold: upstream MB', 2, (r) => median(r.cold.map((t) => t.bytes)) / MB),
      row('warm: update + install, wall s', 2, (r) => median(r.warmMs) / 1000),
      row('warm: upstream requests', 0, (r) => median(r.warm.map((t) => t.requests))),
      row('warm: upstream MB', 3, (r) => median(r.warm.map((t) => t.bytes)) / MB),
    ];

    const disk = sh(`df --output=source,fstype ${root} | tail -1`).trim().replace(/\s+/g, ' ');
    print(
      `A signed archive on 127.0.0.1 (\`test/apt-fixture.ts\`: a Node static server, by-hash indexes) holding a ` +
        `chain of ${CHAIN} packages, ${TOP} → … → ${pkgName(CHAIN - 1)}, ${fmt(archive.debBytes / MB)} MB of .debs ` +
        `(${PAYLOADS.size} of them carry 1–5 MB of random data). Each run is apt ${aptVersion()} in a fresh state ` +
        `directory: \`apt-get update\`, then \`apt-get install --download-only -y ${TOP}\` (all ${CHAIN} .debs), ` +
        `through the accel mirror (\`accel mirror serve\`, remap \`${REMAP}\`, a separate Node ` +
        `${process.versions.node} process, default TTL) or through apt-cacher-ng ${debVersion('apt-cacher-ng')} ` +
        `(its own config, cache and port; \`Remap-${REMAP}: /${REMAP} ; <archive>/\`, every other setting at its ` +
        `default). Data on ${disk}; ${sh('nproc').trim()} cores.\n`,
    );
    print(
      'ratio: accel ÷ apt-cacher-ng, lower is better for every row; above 1 means accel is slower or fetches more.\n',
    );
    print('| measurement | accel mirror | apt-cacher-ng | ratio |');
    print('| --- | ---: | ---: | ---: |');
    for (const r of rows) {
      const ratio = r.acng === 0 ? '–' : fmt(r.accel / r.acng, 2);
      print(`| ${r.what} | ${fmt(r.accel, r.digits)} | ${fmt(r.acng, r.digits)} | ${ratio} |`);
    }
    print(
      `| offline: upstream stopped, accel restarted with \`--offline\`, apt-cacher-ng as it was | ` +
        `${outcome(offlineAccel)} | ${outcome(offlineAcng)} | – |`,
    );
    print('');
    print(
      `- medians of ${ROUNDS} rounds; each round starts both caches empty (a new accel home, a new apt-cacher-ng cache dir) and runs, in turn: accel cold, apt-cacher-ng cold, accel warm, apt-cacher-ng warm`,
    );
    print(
      '- upstream requests: what the archive server logged during the run; upstream MB: what it sent, headers included, counted at a TCP relay on a low port that both caches go through, because apt-cacher-ng cannot use ports from the ephemeral range (≥ 32768: 503 towards an upstream, "Error resolving address for binding" as its own port). The archive server answers every GET in full, never 304',
    );
    print(
      `- requests for a path already asked for in the same run, all rounds: accel ${sum(a.cold, (t) => t.repeats)} cold, ${sum(a.warm, (t) => t.repeats)} warm; apt-cacher-ng ${sum(b.cold, (t) => t.repeats)} cold, ${sum(b.warm, (t) => t.repeats)} warm`,
    );
    print(`- offline, apt-cacher-ng restarted with \`Offlinemode: 1\` on the same cache: ${outcome(offlineAcngFlag)}`);
    print('- MB = 2^20 bytes');
    print('');
  } finally {
    for (const child of children.reverse()) await stop(child);
    await relay?.close();
    await upstream?.close();
    rmSync(root, { recursive: true, force: true });
  }
}

/** Built once: packages with a payload are made here, the rest and all the indexes by `buildAptRepo`. */
async function buildArchive(root: string): Promise<Archive> {
  const dir = join(root, 'archive');
  const keyring = join(root, 'archive-key.gpg');
  const small: FakePackage[] = [];
  let debBytes = 0;
  for (let i = 0; i < CHAIN; i++) {
    const pkg: FakePackage = { name: pkgName(i), version: '1.0' };
    if (i + 1 < CHAIN) pkg.depends = `${pkgName(i + 1)} (>= 1.0)`;
    const payload = PAYLOADS.get(i);
    if (payload === undefined) small.push(pkg);
    else debBytes += buildPayloadDeb(join(root, 'staging', pkg.name), debPath(dir, pkg), { ...pkg, payload });
  }
  // apt-ftparchive indexes all of pool/main, so the .debs already there are listed and signed as well.
  await buildAptRepo(dir, { suite: SUITE, packages: small, gpgHome: join(root, 'gnupg'), keyring, byHash: true });
  for (const pkg of small) debBytes += statSync(debPath(dir, pkg)).size;
  return { dir, keyring, debBytes };
}

function debPath(dir: string, pkg: FakePackage): string {
  return join(dir, 'pool', 'main', pkg.name.slice(0, 1), pkg.name, `${pkg.name}_${pkg.version}_all.deb`);
}

/** Builds `deb` from a package tree made in `tree`; returns the size of the .deb. */
function buildPayloadDeb(tree: string, deb: string, pkg: FakePackage & { payload: number }): number {
  const control = [
    `Package: ${pkg.name}`,
    `Version: ${pkg.version}`,
    'Architecture: all',
    'Maintainer: accel bench <bench@example.invalid>',
    ...(pkg.depends ? [`Depends: ${pkg.depends}`] : []),
    'Section: misc',
    'Priority: optional',
    `Description: accel bench package ${pkg.name}`,
    ' A package with a payload of random bytes.',
    '',
  ].join('\n');
  mkdirSync(join(tree, 'DEBIAN'), { recursive: true });
  writeFileSync(join(tree, 'DEBIAN', 'control'), control);
  mkdirSync(join(tree, 'usr', 'share', pkg.name), { recursive: true });
  writeFileSync(join(tree, 'usr', 'share', pkg.name, 'payload.bin'), randomBytes(pkg.payload));
  mkdirSync(resolve(deb, '..'), { recursive: true });
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', tree, deb], { stdio: 'ignore' });
  rmSync(tree, { recursive: true, force: true });
  return statSync(deb).size;
}

/** `apt-get update` and `install --download-only` in a fresh apt root, removed afterwards. */
async function updateAndDownload(root: string, sourcesList: string): Promise<AptRun> {
  const aptRoot = mkdtempSync(join(root, 'apt-'));
  try {
    const start = performance.now();
    const update = await aptGet(['update'], { sourcesList, root: aptRoot });
    let install = update;
    if (update.code === 0) {
      install = await aptGet(['install', '--download-only', '-y', TOP], { sourcesList, root: aptRoot });
    }
    const ms = performance.now() - start;
    const debs = debsDownloaded(aptRoot).length;
    const problem = /^[WE]:.*$/m.exec(update.stderr)?.[0] ?? /^E:.*$/m.exec(install.stderr)?.[0];
    let failure = '';
    if (update.code !== 0 || install.code !== 0 || problem !== undefined || debs !== CHAIN) {
      failure = problem ?? `exit ${install.code}, ${debs} of ${CHAIN} .debs`;
    }
    return { ms, debs, failure };
  } finally {
    rmSync(aptRoot, { recursive: true, force: true });
  }
}

function outcome(run: AptRun): string {
  if (!run.failure) return `works (${run.debs} .debs)`;
  return `fails: \`${run.failure.replace(/`/g, "'").replace(/\|/g, '\\|').slice(0, 160)}\``;
}

/** A separate process, as a user runs it; its remap points at the archive. */
function startAccel(home: string, origin: string, offline: boolean): Promise<Server> {
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, 'config.json'), JSON.stringify({ mirror: { remaps: { [REMAP]: [`http://${origin}`] } } }));
  const log = `${home}${offline ? '-offline' : ''}.log`;
  return startAccelMirror(home, log, ['--allow', origin, ...(offline ? ['--offline'] : [])]);
}

/** Our own instance: config, cache, logs and socket in the temp dir, on a free port; the system service untouched. */
async function startAcng(dir: string, upstreamUrl: string, offline: boolean): Promise<Server> {
  const conf = join(dir, offline ? 'conf-offline' : 'conf');
  for (const d of [conf, join(dir, 'cache'), join(dir, 'log')]) mkdirSync(d, { recursive: true });
  const port = await freeLowPort();
  const settings = [
    `CacheDir: ${join(dir, 'cache')}`,
    `LogDir: ${join(dir, 'log')}`,
    'SupportDir: /usr/lib/apt-cacher-ng',
    `SocketPath: ${join(dir, 'socket')}`,
    `Port: ${port}`,
    'BindAddress: 127.0.0.1',
    'ForeGround: 1',
    `Remap-${REMAP}: /${REMAP} ; ${upstreamUrl}`,
    ...(offline ? ['Offlinemode: 1'] : []),
    '',
  ];
  writeFileSync(join(conf, 'acng.conf'), settings.join('\n'));
  const log = join(dir, offline ? 'stderr-offline.log' : 'stderr.log');
  const fd = openSync(log, 'w');
  const child = spawn(ACNG, ['-c', conf], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  await waitUntil(child, log, () => canConnect(port));
  return { url: `http://127.0.0.1:${port}`, child };
}

/**
 * A free port below 32768: apt-cacher-ng 3.7 cannot bind a higher one ("Error resolving address for binding"),
 * and port 0 hands out ports from the ephemeral range above it.
 */
async function freeLowPort(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (await canListen(port)) return port;
  }
  throw new Error('no free port between 20000 and 32000 on 127.0.0.1');
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

interface Relay {
  /** `127.0.0.1:<port>`, the port below 32768. */
  origin: string;
  /** Bytes the archive server has sent through the relay so far, HTTP headers included. */
  bytesDown(): number;
  close(): Promise<void>;
}

/**
 * The archive server listens on a port from the ephemeral range, which apt-cacher-ng 3.7 cannot connect to
 * (it answers 503), so both caches reach it through this TCP relay on a low port: the same extra hop for each.
 */
async function startRelay(targetPort: number): Promise<Relay> {
  const sockets = new Set<Socket>();
  let bytesDown = 0;
  const server = createServer((client) => {
    const target = connect(targetPort, '127.0.0.1');
    target.on('data', (chunk: Buffer) => {
      bytesDown += chunk.length;
    });
    for (const s of [client, target]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        target.destroy();
      });
    }
    client.pipe(target).pipe(client);
  });
  for (let i = 0; i < 100; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!listening) continue;
    server.removeAllListeners('error');
    return {
      origin: `127.0.0.1:${port}`,
      bytesDown: () => bytesDown,
      close: () =>
        new Promise((resolve) => {
          server.close(() => resolve());
          for (const s of sockets) s.destroy();
        }),
    };
  }
  throw new Error('no free port between 20000 and 32000 on 127.0.0.1 for the relay');
}

function aptVersion(): string {
  return /^apt (\S+)/.exec(spawnSync('apt-get', ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';
}

function debVersion(pkg: string): string {
  // `dpkg-query -W` prints `<package>\t<version>`.
  return spawnSync('dpkg-query', ['-W', pkg], { encoding: 'utf8' }).stdout.trim().split('\t')[1] ?? '?';
}
