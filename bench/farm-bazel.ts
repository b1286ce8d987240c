// A real Bazel C++ project on the farm: abseil (Debian's source package `abseil`, fetched with `apt-get source`)
// built with Bazel 4's own C/C++ rules, locally and through the syncer's REAPI with one loopback worker of 2
// slots: how many actions ran remote, wall time against local, outputs against local, and a clean rebuild
// from the remote cache.
import { type ChildProcess, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { bazel4Repositories, processCounts, processSummary } from '../test/bazel-fixture.ts';
import { debianSource } from './debian-source.ts';
import { ACCEL, certs, cleanEnv, stopAll, syncerAndWorker } from './farm.ts';
import { fmt } from './util.ts';

/** Five of abseil's library targets, with what they depend on inside abseil. */
const TARGETS = [
  '//absl/base',
  '//absl/strings',
  '//absl/synchronization',
  '//absl/time',
  '//absl/container:flat_hash_map',
];
/** Local and remote builds, each this many times in turn (BENCH_ABSEIL_ROUNDS). */
const ROUNDS = Number(process.env.BENCH_ABSEIL_ROUNDS ?? 2);
/** Debian's copies of the repositories abseil's WORKSPACE downloads, where Debian has them (bazel-skylib, bazel-platforms). */
const DEBIAN_REPOS: Record<string, string> = {
  bazel_skylib: '/usr/share/bazel/tools/skylib',
  platforms: '/usr/share/bazel/tools/platforms',
};

/** Every archive and shared library under bazel-bin/absl, by path: what the build made. */
function artifacts(ws: string): Map<string, string> {
  const out = new Map<string, string>();
  const top = join(ws, 'bazel-bin', 'absl');
  for (const e of readdirSync(top, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && /\.(a|so)$/.test(e.name)) {
      const path = join(e.parentPath, e.name);
      out.set(relative(top, path), createHash('sha256').update(readFileSync(path)).digest('hex'));
    }
  }
  return out;
}

export async function benchFarmBazel(print: (line: string) => void): Promise<void> {
  print('### A real Bazel C++ project on the farm: abseil\n');
  if (spawnSync('which', ['bazel']).status !== 0) {
    print('skipped: no bazel (`apt-get install bazel-bootstrap`)\n');
    return;
  }
  const missing = Object.values(DEBIAN_REPOS).filter((p) => !existsSync(join(p, 'WORKSPACE')));
  if (missing.length > 0) {
    print(`skipped: needs ${missing.join(', ')} (\`apt-get install bazel-skylib bazel-platforms\`)\n`);
    return;
  }
  const source = debianSource('abseil', join(tmpdir(), 'accel-bench-abseil'), 'absl/base/config.h');
  if ('skipped' in source) {
    print(`skipped: ${source.skipped}\n`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'accel-bench-bazel-abseil-'));
  const procs: ChildProcess[] = [];
  const ws = join(dir, 'abseil');
  const root = join(dir, 'bazel-root');
  const startup = [`--output_user_root=${root}`, '--max_idle_secs=600'];
  try {
    cpSync(source.root, ws, { recursive: true, filter: (p) => !relative(source.root, p).startsWith('debian') });
    const homes = await certs(dir, { syncer: 'syncer', w1: 'worker', dev: 'client' });
    const { syncer, reapiPort } = await syncerAndWorker(homes, [], procs);
    const config = spawnSync(
      ACCEL[0] as string,
      [
        ...ACCEL.slice(1),
        ...['--home', homes.dev as string, 'farm', 'config', 'bazel', '--reapi', `grpcs://127.0.0.1:${reapiPort}`],
        ...['--syncer', syncer, '--write', ws],
      ],
      { encoding: 'utf8', env: cleanEnv() },
    );
    if (config.status !== 0) throw new Error(config.stderr);
    const common = [
      ...bazel4Repositories(dir),
      ...Object.entries(DEBIAN_REPOS).map(([name, path]) => `--override_repository=${name}=${path}`),
    ];
    const bazel = (args: string[]) => {
      const [command, ...rest] = args;
      const t0 = performance.now();
      const r = spawnSync('bazel', [...startup, command as string, ...common, ...rest], {
        cwd: ws,
        encoding: 'utf8',
        env: cleanEnv(),
        maxBuffer: 64 * 1024 * 1024,
      });
      const seconds = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error(`bazel ${args.join(' ')} failed:\n${r.stderr.slice(-4000)}`);
      return { seconds, summary: processSummary(r.stderr), counts: processCounts(r.stderr) };
    };
    const noRemote = ['--remote_executor=', '--spawn_strategy=local', '--strategy=TestRunner=local'];
    // Nothing may run here; the second remote build runs every action again (it uploads, never reads a hit).
    const remoteOnly = ['--spawn_strategy=remote', '--noremote_local_fallback'];
    // The server up and the external repositories and toolchain configured before anything is timed.
    bazel(['build', '--nobuild', ...TARGETS, ...noRemote]);
    // Local and remote in turn, twice, each from `bazel clean`; the better of each pair is compared, so a burst
    // of load from elsewhere on the machine does not decide the ratio.
    const locals: ReturnType<typeof bazel>[] = [];
    const remotes: ReturnType<typeof bazel>[] = [];
    let expected = new Map<string, string>();
    let got = new Map<string, string>();
    for (let round = 0; round < ROUNDS; round++) {
      bazel(['clean']);
      locals.push(bazel(['build', ...TARGETS, ...noRemote]));
      expected = artifacts(ws);
      bazel(['clean']);
      remotes.push(bazel(['build', ...TARGETS, ...remoteOnly, ...(round > 0 ? ['--noremote_accept_cached'] : [])]));
      got = artifacts(ws);
    }
    const best = (runs: ReturnType<typeof bazel>[]) => runs.reduce((x, y) => (y.seconds < x.seconds ? y : x));
    const local = best(locals);
    const remote = best(remotes);
    const same = [...expected].filter(([path, digest]) => got.get(path) === digest).length;
    bazel(['clean']);
    const again = bazel(['build', ...TARGETS, ...remoteOnly]);
    const spawns = (c: Record<string, number>) =>
      Object.entries(c)
        .filter(([k]) => k !== 'internal')
        .reduce((n, [, v]) => n + v, 0);
    const remoteShare = (100 * (remote.counts.remote ?? 0)) / Math.max(1, spawns(remote.counts));
    const rc = readFileSync(join(ws, '.bazelrc'), 'utf8');
    const jobs = /--jobs=(\d+)/.exec(rc)?.[1] ?? '?';
    print(
      `- abseil ${source.version} (Debian source package \`abseil\`), targets ${TARGETS.map((t) => `\`${t}\``).join(', ')}; Debian's Bazel ${spawnSync('dpkg-query', ['-W', '-f', `$${'{Version}'}`, 'bazel-bootstrap'], { encoding: 'utf8' }).stdout}, its own C/C++ rules (rules_cc and rules_java forwarded to \`native.*\`, Debian's bazel-skylib and bazel-platforms); ${availableParallelism()} CPUs, load ${fmt(loadavg()[0] as number, 2)} after the runs`,
    );
    print(
      `- one Bazel server, started and analysed before timing; \`bazel clean\` before every build; local and remote in turn, ${ROUNDS} times (every remote after the first with \`--noremote_accept_cached\`: every action runs again), the best of each compared. Local: \`--spawn_strategy=local\`. Remote: the .bazelrc \`accel farm config bazel --syncer …\` wrote (\`--jobs=${jobs}\`: the farm's 2 slots plus this machine's CPUs) with \`--spawn_strategy=remote --noremote_local_fallback\` (nothing may run here), syncer (\`farm.reapiRun: compilers\`) and one 2-slot worker on loopback, grpcs with client certificates`,
    );
    print('');
    print('| build | seconds | × local | Bazel says |');
    print('| --- | ---: | ---: | --- |');
    const all = (runs: ReturnType<typeof bazel>[]) => runs.map((r) => fmt(r.seconds, 1)).join(', ');
    print(`| local (best of ${all(locals)}) | ${fmt(local.seconds, 1)} | 1.00 | ${local.summary} |`);
    print(
      `| remote execution (best of ${all(remotes)}) | ${fmt(remote.seconds, 1)} | ${fmt(remote.seconds / local.seconds, 2)} | ${remote.summary} |`,
    );
    print(
      `| clean rebuild, remote cache | ${fmt(again.seconds, 1)} | ${fmt(again.seconds / local.seconds, 2)} | ${again.summary} |`,
    );
    print('');
    print(
      `Actions remote: ${remote.counts.remote ?? 0} of ${spawns(remote.counts)} (${fmt(remoteShare, 0)} %); outputs equal to the local build's: ${same} of ${expected.size} archives and shared libraries (sha256); clean rebuild: ${again.counts['remote cache hit'] ?? 0} of ${spawns(again.counts)} remote cache hits.\n`,
    );
  } finally {
    spawnSync('bazel', [...startup, 'shutdown'], { cwd: ws, stdio: 'ignore' });
    await stopAll(procs);
    spawnSync('chmod', ['-R', 'u+w', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
}
