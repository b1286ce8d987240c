// The compile farm: (1) dispatch overhead with a fake compiler that sleeps 100 ms, 16 workers × 4 slots on
// loopback, 1,000 jobs sent through the real client code; (2) a cold build of the bench/cc project (lua 5.4)
// through a syncer and one local worker, against plain `make -j2` and distcc to a local distccd; (3) Bazel over
// the syncer's REAPI: 100 gcc genrules, and abseil with Bazel's own C/C++ rules (farm-bazel.ts).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { classify } from '../src/compiler/args.ts';
import { runCompiler } from '../src/compiler/run.ts';
import { loadConfig } from '../src/core/config.ts';
import { farmCompile } from '../src/farm/client.ts';
import { initCa, installBundle, issueCert, type Role, writeBundle } from '../src/net/tls.ts';
import { Store } from '../src/store/store.ts';
import { processSummary } from '../test/bazel-fixture.ts';
import { benchFarmPolicy } from './farm-policy.ts';
import { fmt } from './util.ts';

const ROOT = resolve(import.meta.dirname, '..');
const MAIN = join(ROOT, 'src', 'main.ts');
const EXE = join(ROOT, 'build', 'out', 'accel-linux-x64');
/**
 * The single executable when built (`npm run build`), else Node and the sources (also with
 * BENCH_FROM_SOURCES=1, when the executable is older than the tree): argv before accel's own.
 */
export const ACCEL = existsSync(EXE) && !process.env.BENCH_FROM_SOURCES ? [EXE] : [process.execPath, MAIN];
const LUA_SRC = join(tmpdir(), 'accel-bench-lua', 'src');
const WORKERS = Number(process.env.BENCH_FARM_WORKERS ?? 16);
const SLOTS = Number(process.env.BENCH_FARM_SLOTS ?? 4);
const JOBS = Number(process.env.BENCH_FARM_JOBS ?? 1000);
/** Also measured: one worker with one slot, jobs one after another (latency without CPU contention). */
const SERIAL_JOBS = 50;
const SLEEP_MS = 100;
const CFLAGS = '-std=gnu99 -O2 -Wall -Wextra -DLUA_COMPAT_5_3 -DLUA_USE_LINUX';

export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ACCEL_'))), ...extra };
}

export async function certs(dir: string, machines: Record<string, Role>): Promise<Record<string, string>> {
  const ca = join(dir, 'ca');
  await initCa(ca);
  const homes: Record<string, string> = {};
  for (const [name, role] of Object.entries(machines)) {
    await issueCert(ca, { name, role });
    await writeBundle(ca, name, join(dir, `${name}.json`));
    homes[name] = join(dir, 'homes', name);
    await installBundle(homes[name], join(dir, `${name}.json`));
  }
  return homes;
}

/** Starts `accel ARGS` and resolves with the URL it announces on stderr. */
function start(args: string[], ready: RegExp, env: NodeJS.ProcessEnv, procs: ChildProcess[]): Promise<string> {
  const child = spawn(ACCEL[0] as string, [...ACCEL.slice(1), ...args], {
    env: cleanEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  procs.push(child);
  let err = '';
  return new Promise((resolvePromise, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = ready.exec(err);
      if (m) resolvePromise(m[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`accel ${args.join(' ')} exited ${code}: ${err}`)));
  });
}

export function stopAll(procs: ChildProcess[]): Promise<unknown> {
  return Promise.all(
    procs.map(
      (p) =>
        new Promise((r) => {
          if (p.exitCode !== null || p.signalCode !== null) return r(undefined);
          p.once('exit', r);
          p.kill('SIGTERM');
        }),
    ),
  );
}

/**
 * A "compiler" that answers the identity probes like gcc, sleeps, and creates its -o file: a C program, so its
 * own start-up (~1 ms) does not pollute the overhead the way a shell script's would.
 */
const FAKE_COMPILER = `#include <stdio.h>
#include <string.h>
#include <time.h>
int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "-dumpversion")) { puts("99"); return 0; }
  if (argc > 1 && !strcmp(argv[1], "-dumpmachine")) { puts("fake-linux-gnu"); return 0; }
  if (argc > 1 && !strcmp(argv[1], "-E")) return 0;
  struct timespec ts = {0, ${SLEEP_MS} * 1000000L};
  nanosleep(&ts, 0);
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp(argv[i], "-o")) { FILE *f = fopen(argv[i + 1], "w"); if (f) fclose(f); }
  return 0;
}
`;

function fakeCompiler(dir: string): string {
  const bin = join(dir, 'fakebin');
  mkdirSync(bin);
  writeFileSync(join(dir, 'fake.c'), FAKE_COMPILER);
  const r = spawnSync('cc', ['-O2', '-o', join(bin, 'gcc'), join(dir, 'fake.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the fake compiler: ${r.stderr}`);
  return bin;
}

interface DispatchRun {
  label: string;
  workers: number;
  slots: number;
  jobs: number;
  seconds: number;
  spent: { client: number; prepare: number; compile: number; collect: number; jobs: number };
}

async function dispatchOverhead(print: (line: string) => void): Promise<void> {
  // The same serial run without the sandbox shows what bubblewrap costs per job (namespaces, mounts, setpriv).
  const runs = [
    await dispatch(WORKERS, SLOTS, JOBS),
    await dispatch(1, 1, SERIAL_JOBS),
    await dispatch(1, 1, SERIAL_JOBS, ['--unsandboxed']),
  ];
  print(`### Dispatch overhead\n`);
  print(
    `- a fake compiler (C) that sleeps ${SLEEP_MS} ms; workers are separate \`accel worker\` processes, the syncer another; one client process (like the compile-cache daemon: it keeps its TLS connections) with one job in flight per slot; loopback, mutual TLS; ${availableParallelism()} CPUs, load ${fmt(loadavg()[0] as number, 2)} after the runs`,
  );
  print('');
  print(
    '| workers × slots | jobs | jobs/s | ideal | ÷ ideal | overhead per job (ms) | of which: compiler process start | sandbox | queue, transfer, TLS |',
  );
  print('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of runs) {
    const slots = r.workers * r.slots;
    const ideal = (slots * 1000) / SLEEP_MS;
    const perJob = (r.seconds * 1000 * slots) / r.jobs - SLEEP_MS;
    const m = (v: number) => fmt(v / r.spent.jobs);
    const rest = r.spent.client - r.spent.prepare - r.spent.compile - r.spent.collect;
    print(
      `| ${r.label} | ${r.jobs} | ${fmt(r.jobs / r.seconds)} | ${ideal} | ${fmt(r.jobs / r.seconds / ideal, 2)} | ${fmt(perJob)} | ${m(r.spent.compile - SLEEP_MS * r.spent.jobs)} | ${m(r.spent.prepare + r.spent.collect)} | ${m(rest)} |`,
    );
  }
  print('');
}

async function dispatch(
  workers: number,
  slots: number,
  jobs: number,
  workerFlags: string[] = [],
): Promise<DispatchRun> {
  const dir = mkdtempSync(join(tmpdir(), 'accel-bench-farm-'));
  const procs: ChildProcess[] = [];
  try {
    const names: Record<string, Role> = { syncer: 'syncer', dev: 'client' };
    for (let i = 0; i < workers; i++) names[`w${i}`] = 'worker';
    const homes = await certs(dir, names);
    const project = join(dir, 'project');
    mkdirSync(join(project, 'out'), { recursive: true });
    writeFileSync(join(project, 'a.c'), 'int a;\n');
    const bin = fakeCompiler(dir);
    const path = `${bin}:${process.env.PATH}`;
    for (const home of Object.values(homes)) writeFileSync(join(home, 'config.json'), '{"farm":{"compilers":["gcc"]}}');
    const syncer = await start(
      ['--home', homes.syncer as string, 'syncer', '--port', '0', '--reapi-port', '0', '--dir', project],
      /listening on (https:\/\/[^/\s]+)/,
      {},
      procs,
    );
    await Promise.all(
      Array.from({ length: workers }, (_, i) =>
        start(
          ['--home', homes[`w${i}`] as string, 'worker', '--cores', String(slots), '--syncer', syncer, ...workerFlags],
          /status on (https:\/\/\S+)/,
          { PATH: path, ACCEL_FARM_STATUS_PORT: '0' },
          procs,
        ),
      ),
    );
    const dev = homes.dev as string;
    const { config } = loadConfig(dev, { ACCEL_FARM_SYNCER: syncer, ACCEL_FARM_START_TIMEOUT: '60' });
    const store = Store.open({ home: dev });
    const gcc = join(bin, 'gcc');
    const env = cleanEnv({ PATH: path });
    const spent = { client: 0, prepare: 0, compile: 0, collect: 0, jobs: 0 };
    const one = async (n: number) => {
      const t0 = performance.now();
      const args = ['-c', 'a.c', '-o', `out/${n}.o`];
      const c = classify(gcc, args, project);
      if (c.kind !== 'cacheable') throw new Error(c.reason);
      const run = await farmCompile(config, dev, store, {
        compilerPath: gcc,
        args,
        options: {
          cwd: project,
          env,
          compile: c.compile,
          local: (path, a) => runCompiler(path, a, { cwd: project, env }),
        },
      });
      if (!run.remote || run.code !== 0) throw new Error(`job ${n}: ${run.fallback ?? run.stderr.toString()}`);
      if (n >= 0 && run.timings) {
        spent.client += performance.now() - t0;
        spent.prepare += run.timings.prepare;
        spent.compile += run.timings.compile;
        spent.collect += run.timings.collect;
        spent.jobs++;
      }
    };
    await Promise.all(Array.from({ length: workers * slots }, (_, i) => one(-i - 1))); // warm-up: every slot once
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: workers * slots }, async () => {
        while (next < jobs) await one(next++);
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    store.close();
    const label = `${workers} × ${slots}${workerFlags.length ? ` ${workerFlags.join(' ')}` : ''}`;
    return { label, workers, slots, jobs, seconds, spent };
  } finally {
    await stopAll(procs);
    rmSync(dir, { recursive: true, force: true });
  }
}

function timeMake(dir: string, cc: string, env: NodeJS.ProcessEnv): number {
  spawnSync('make', ['-C', dir, 'clean'], { env });
  const started = performance.now();
  const r = spawnSync('make', ['-C', dir, '-j2', `CC=${cc}`], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make with CC=${cc} failed: ${r.stderr}`);
  return (performance.now() - started) / 1000;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** A syncer (HTTPS on a free port, REAPI on another) and one 2-slot worker, from the homes `certs` made. */
export async function syncerAndWorker(
  homes: Record<string, string>,
  syncerArgs: string[],
  procs: ChildProcess[],
): Promise<{ syncer: string; reapiPort: number }> {
  const reapiPort = await freePort();
  const syncer = await start(
    ['--home', homes.syncer as string, 'syncer', '--port', '0', '--reapi-port', String(reapiPort), ...syncerArgs],
    /listening on (https:\/\/[^/\s]+)/,
    {},
    procs,
  );
  await start(
    ['--home', homes.w1 as string, 'worker', '--cores', '2', '--syncer', syncer, '--status-port', '0'],
    /status on (https:\/\/\S+)/,
    {},
    procs,
  );
  return { syncer, reapiPort };
}

async function coldBuild(print: (line: string) => void): Promise<void> {
  print('### Cold build through the farm\n');
  if (!existsSync(join(LUA_SRC, 'lvm.c'))) {
    print('skipped: run `npm run bench -- cc` first (it unpacks lua 5.4 from `apt-get source`)\n');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'accel-bench-farm-'));
  const procs: ChildProcess[] = [];
  try {
    const build = join(dir, 'lua');
    mkdirSync(build);
    for (const f of readdirSync(LUA_SRC)) if (/\.[ch]$/.test(f)) copyFileSync(join(LUA_SRC, f), join(build, f));
    const multiarch = spawnSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(join(build, 'lua5.4-deb-multiarch.h'), `#define DEB_HOST_MULTIARCH "${multiarch}"\n`);
    writeFileSync(
      join(build, 'Makefile'),
      `CFLAGS = ${CFLAGS}\nOBJS = $(patsubst %.c,%.o,$(wildcard *.c))\nall: $(OBJS)\n%.o: %.c\n\t$(CC) $(CFLAGS) -c $< -o $@\nclean:\n\trm -f *.o\n`,
    );
    const tus = readdirSync(build).filter((f) => f.endsWith('.c')).length;
    const env = cleanEnv();
    const plain = timeMake(build, 'gcc', env);

    const homes = await certs(dir, { syncer: 'syncer', w1: 'worker', dev: 'client', dev2: 'client', dev3: 'client' });
    const { syncer, reapiPort } = await syncerAndWorker(homes, ['--dir', build], procs);
    const accelEnv = cleanEnv({ ACCEL_FARM_SYNCER: syncer });
    const farm = timeMake(build, `${ACCEL.join(' ')} --home ${homes.dev} cc -- gcc`, accelEnv);
    const stats = spawnSync(
      ACCEL[0] as string,
      [...ACCEL.slice(1), '--home', homes.dev as string, '--json', 'cc', '--stats'],
      {
        encoding: 'utf8',
        env,
      },
    );
    const counters = JSON.parse(stats.stdout).counters as Record<string, number>;
    // The same cold build through the native client: one long-lived daemon (started by the first compile)
    // dispatches every miss, so no compile pays Node's start-up or a TLS handshake. Its own home: a cold cache.
    const accelIn = (home: string, args: string[]) =>
      spawnSync(ACCEL[0] as string, [...ACCEL.slice(1), '--home', home, ...args], { encoding: 'utf8', env: accelEnv });
    const masq = accelIn(homes.dev2 as string, ['cc', '--masquerade-dir']).stdout.trim();
    const viaDaemon = timeMake(build, join(masq, 'gcc'), accelEnv);
    const daemonCounters = JSON.parse(accelIn(homes.dev2 as string, ['--json', 'cc', '--stats']).stdout)
      .counters as Record<string, number>;
    accelIn(homes.dev2 as string, ['cc', 'daemon', '--stop']);
    // The same through the Remote Execution API: a dependency scan here and an action per miss, no include tree.
    const reapiEnv = cleanEnv({ ACCEL_FARM_REAPI: `grpcs://127.0.0.1:${reapiPort}` });
    const reapiIn = (args: string[]) =>
      spawnSync(ACCEL[0] as string, [...ACCEL.slice(1), '--home', homes.dev3 as string, ...args], {
        encoding: 'utf8',
        env: reapiEnv,
      });
    const reapiMasq = reapiIn(['cc', '--masquerade-dir']).stdout.trim();
    spawnSync('make', ['-C', build, 'clean'], { stdio: 'ignore' });
    const viaReapi = timeMake(build, join(reapiMasq, 'gcc'), reapiEnv);
    const reapiCounters = JSON.parse(reapiIn(['--json', 'cc', '--stats']).stdout).counters as Record<string, number>;
    reapiIn(['cc', 'daemon', '--stop']);

    let distcc: number | string = 'not installed';
    if (spawnSync('which', ['distccd']).status === 0) {
      const port = await freePort();
      const daemon = spawn(
        'distccd',
        ['--no-detach', '--daemon', '--allow', '127.0.0.1', '--listen', '127.0.0.1', '--port', String(port), '-j', '2'],
        { stdio: 'ignore', env },
      );
      procs.push(daemon);
      await new Promise((r) => setTimeout(r, 500));
      distcc = timeMake(build, 'distcc gcc', { ...env, DISTCC_HOSTS: `127.0.0.1:${port}/2`, DISTCC_FALLBACK: '0' });
    }
    print(
      `- lua 5.4 from \`apt-get source\`, ${tus} TUs, \`make -j2\`, cold (empty accel cache), ${availableParallelism()} CPUs; accel ${ACCEL.length === 1 ? `as the single executable ${EXE.slice(ROOT.length + 1)}` : "from source (`node src/main.ts`, each compile pays Node's start-up)"}, syncer and one 2-slot worker on loopback; distcc ${(spawnSync('distcc', ['--version'], { encoding: 'utf8' }).stdout ?? 'not installed').split('\n')[0]} to a local distccd`,
    );
    const fallbacks = (c: Record<string, number>) =>
      Object.entries(c)
        .filter(([k]) => k.startsWith('farm fallback'))
        .reduce((n, [, v]) => n + v, 0);
    print(
      `- accel: ${counters['farm compiled'] ?? 0} compiled on the farm, ${fallbacks(counters)} local fallbacks` +
        ` (\`accel cc --\`); ${daemonCounters['farm compiled'] ?? 0} and ${fallbacks(daemonCounters)} (native client + daemon);` +
        ` ${reapiCounters['farm compiled'] ?? 0} and ${fallbacks(reapiCounters)} (native client + daemon over REAPI)`,
    );
    print('');
    print('| build | seconds | ÷ plain |');
    print('| --- | ---: | ---: |');
    print(`| plain gcc | ${fmt(plain, 2)} | 1.00 |`);
    print(`| \`accel cc --\` via syncer + 1 worker | ${fmt(farm, 2)} | ${fmt(farm / plain, 2)} |`);
    print(`| native client + daemon via syncer + 1 worker | ${fmt(viaDaemon, 2)} | ${fmt(viaDaemon / plain, 2)} |`);
    print(
      `| native client + daemon via the syncer's REAPI + 1 worker | ${fmt(viaReapi, 2)} | ${fmt(viaReapi / plain, 2)} |`,
    );
    if (typeof distcc === 'number') print(`| distcc to localhost | ${fmt(distcc, 2)} | ${fmt(distcc / plain, 2)} |`);
    else print(`| distcc | ${distcc} | |`);
    print('');
  } finally {
    await stopAll(procs);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchFarm(print: (line: string) => void): Promise<void> {
  print('## Compile farm (`bench/farm.ts`)\n');
  await benchFarmPolicy(print);
  if (!process.env.BENCH_FARM_SKIP_DISPATCH) await dispatchOverhead(print);
  if (!process.env.BENCH_FARM_SKIP_BUILD) await coldBuild(print);
  if (!process.env.BENCH_FARM_SKIP_BAZEL) await bazelGenrules(print);
  if (!process.env.BENCH_FARM_SKIP_ABSEIL) {
    // Loaded here: farm-bazel.ts takes the syncer and worker helpers from this file.
    const { benchFarmBazel } = await import('./farm-bazel.ts');
    await benchFarmBazel(print);
  }
}

const GENRULES = 100;

/**
 * Bazel 4 building 100 small gcc genrules: locally (linux-sandbox), on the syncer's REAPI with one 2-slot worker
 * (fresh output base), and a fully cached rebuild (`bazel clean`, then the same build: every action a remote
 * cache hit). One Bazel server per configuration, started before the timed builds.
 */
async function bazelGenrules(print: (line: string) => void): Promise<void> {
  if (spawnSync('which', ['bazel']).status !== 0) {
    print('Bazel genrules over REAPI: skipped (no bazel; `apt-get install bazel-bootstrap`)\n');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'accel-bench-bazel-'));
  const procs: ChildProcess[] = [];
  const roots: string[] = [];
  try {
    const homes = await certs(dir, { syncer: 'syncer', w1: 'worker', dev: 'client' });
    const { reapiPort } = await syncerAndWorker(homes, [], procs);
    const workspace = (name: string, salt = name) => {
      const ws = join(dir, name);
      mkdirSync(ws);
      writeFileSync(join(ws, 'WORKSPACE'), '');
      const rules: string[] = [];
      for (let i = 0; i < GENRULES; i++) {
        // The salt makes each workspace's actions its own: no workspace hits another's cache entries.
        writeFileSync(join(ws, `f${i}.c`), `/* ${salt} */ int f${i}(int x) { return x * ${i} + ${i % 7}; }\n`);
        rules.push(
          `genrule(name = "o${i}", srcs = ["f${i}.c"], outs = ["f${i}.o"], cmd = "gcc -O2 -c $(location f${i}.c) -o $@")`,
        );
      }
      writeFileSync(join(ws, 'BUILD'), `${rules.join('\n')}\n`);
      return ws;
    };
    const timed = (ws: string, root: string, args: string[]) => {
      const t0 = performance.now();
      const r = spawnSync('bazel', [`--output_user_root=${root}`, 'build', '//:all', ...args], {
        cwd: ws,
        encoding: 'utf8',
        env: cleanEnv(),
      });
      const seconds = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error(`bazel build failed:\n${r.stderr}`);
      return { seconds, root, summary: processSummary(r.stderr) };
    };
    /** A build with a fresh output base whose server is up, then `bazel clean` and the same build again. */
    const twice = (ws: string, args: string[]) => {
      const root = join(dir, `root-${roots.length}`);
      roots.push(root);
      spawnSync('bazel', [`--output_user_root=${root}`, 'version'], { cwd: ws, stdio: 'ignore', env: cleanEnv() });
      const first = timed(ws, root, args);
      spawnSync('bazel', [`--output_user_root=${root}`, 'clean'], { cwd: ws, stdio: 'ignore', env: cleanEnv() });
      return { first, again: timed(ws, root, args) };
    };
    const config = (ws: string) => {
      const r = spawnSync(
        ACCEL[0] as string,
        [
          ...ACCEL.slice(1),
          ...['--home', homes.dev as string, 'farm', 'config', 'bazel'],
          ...['--reapi', `grpcs://127.0.0.1:${reapiPort}`, '--write', ws],
        ],
        { encoding: 'utf8', env: cleanEnv() },
      );
      if (r.status !== 0) throw new Error(r.stderr);
      return ws;
    };
    // Bazel's own floor for a cached rebuild: its local disk cache, no network.
    const local = twice(workspace('local'), [`--disk_cache=${join(dir, 'disk-cache')}`]);
    const remote = twice(config(workspace('remote')), []);
    const wide = twice(config(workspace('remote-jobs')), ['--jobs=32']);
    print(
      `- Bazel ${spawnSync('dpkg-query', ['-W', '-f', `$${'{Version}'}`, 'bazel-bootstrap'], { encoding: 'utf8' }).stdout || '(not from Debian)'}, ${GENRULES} genrules each \`gcc -O2 -c\` of a one-line C file, ${availableParallelism()} CPUs; one Bazel server per output base, started before timing; syncer + one 2-slot worker on loopback, grpcs with client certificates; "again" is the same build after \`bazel clean\``,
    );
    print('');
    print('| build | seconds | per action (ms) | Bazel says |');
    print('| --- | ---: | ---: | --- |');
    const row = (label: string, r: { seconds: number; summary: string }) =>
      print(`| ${label} | ${fmt(r.seconds, 2)} | ${fmt((r.seconds * 1000) / GENRULES, 1)} | ${r.summary} |`);
    row('local (linux-sandbox), `--disk_cache`', local.first);
    row('again: local disk cache', local.again);
    row('remote execution on the syncer (`--jobs` default: 2)', remote.first);
    row('again: remote cache', remote.again);
    row('remote execution, `--jobs=32`', wide.first);
    row('again: remote cache, `--jobs=32`', wide.again);
    print('');
  } finally {
    for (const root of roots) spawnSync('bazel', [`--output_user_root=${root}`, 'shutdown'], { stdio: 'ignore' });
    await stopAll(procs);
    spawnSync('chmod', ['-R', 'u+w', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
}
