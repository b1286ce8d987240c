// The compile cache in a CMake + Ninja build: jsoncpp 1.9.6 (Debian's orig tarball, the one the feedstocks use),
// CMake's default Release build of its libraries (shared, static, object) and test programs, `ninja -j2`, plain
// and through CMAKE_CXX_COMPILER_LAUNCHER: accel's native client beside ccache, cold and warm, in the same run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { objectFiles } from '../test/helpers.ts';
import { accelHome, cacheFreeEnv, ccacheIn, sameObjects } from './cc-tools.ts';
import { firstLine, fmt, has, median, run } from './util.ts';

const ROOT = resolve(import.meta.dirname, '..');
const MAIN = join(ROOT, 'src', 'main.ts');
const EXE = join(ROOT, 'build', 'out', 'accel-linux-x64');
/** Where .ci/run and get-sources put the orig tarballs. */
const SOURCES = process.env.FEEDSTOCK_SOURCES ?? join(tmpdir(), 'accel-feedstock-sources');
const GET_SOURCES = join(ROOT, '..', 'shared', 'feedstocks', 'get-sources');
const TARBALL = 'libjsoncpp_1.9.6.orig.tar.gz';
const WARM_RUNS = 5;
const JOBS = 2;
/** jsoncpp's defaults but its post-build test run, which would time its tests rather than the compiles. */
const CMAKE_ARGS = ['-G', 'Ninja', '-DCMAKE_BUILD_TYPE=Release', '-DJSONCPP_WITH_POST_BUILD_UNITTEST=OFF'];

/** One way of compiling: the launcher CMake gets (none for plain), its environment, and its hits so far. */
interface Launcher {
  name: string;
  launcher?: string;
  env: NodeJS.ProcessEnv;
  hits: () => number;
}

export async function benchCcCmake(print: (line: string) => void): Promise<void> {
  print('## Compile cache in CMake + Ninja (`bench/cc-cmake.ts`)\n');
  if (!existsSync(join(SOURCES, TARBALL))) {
    print(`skipped: ${TARBALL} is not in ${SOURCES} (\`python3 ${GET_SOURCES} ${SOURCES} jsoncpp\`)\n`);
    return;
  }
  const missing = ['cmake', 'ninja', 'g++', 'ccache'].filter((t) => !has(t));
  if (missing.length > 0) {
    print(`skipped: needs ${missing.join(', ')} (bash scripts/setup.sh --test)\n`);
    return;
  }
  const loadBefore = loadavg()[0] as number;
  const root = mkdtempSync(join(tmpdir(), 'accel-bench-cc-cmake-'));
  const stops: (() => void)[] = [];
  try {
    run('tar', ['-xf', join(SOURCES, TARBALL), '-C', root], {});
    const src = join(root, readdirSync(root).find((d) => d.startsWith('jsoncpp-')) as string);
    const env = cacheFreeEnv();
    const build = join(root, 'build');

    const plainTime = configureAndBuild(src, build, { name: 'plain', env, hits: () => 0 });
    const plain = objectFiles(build);
    const accel = accelLauncher(root, env);
    stops.push(accel.stop);
    const launchers: Launcher[] = [
      accel.launcher,
      { name: 'ccache (launcher)', launcher: 'ccache', ...ccacheIn(root, env) },
    ];

    const rows: { name: string; cold: BuildTime; warm: BuildTime; identical: string }[] = [];
    for (const l of launchers) {
      const cold = configureAndBuild(src, build, l);
      const verdicts = [sameObjects(plain, objectFiles(build))];
      const before = l.hits();
      const warms: BuildTime[] = [];
      for (let i = 0; i < WARM_RUNS; i++) {
        warms.push(configureAndBuild(src, build, l));
        verdicts.push(sameObjects(plain, objectFiles(build)));
      }
      const hits = l.hits() - before;
      if (hits !== WARM_RUNS * plain.size)
        throw new Error(`${l.name}: ${hits} hits in ${WARM_RUNS} warm builds of ${plain.size} objects`);
      const identical = verdicts.find((v) => v.startsWith('NO')) ?? (verdicts.at(-1) as string);
      const warm = { ms: median(warms.map((w) => w.ms)), compileMs: median(warms.map((w) => w.compileMs)) };
      rows.push({ name: l.name, cold, warm, identical });
    }

    const version = (cmd: string) => firstLine(cmd, ['--version']);
    print(
      `- source: jsoncpp 1.9.6 (\`${TARBALL}\`), \`cmake ${CMAKE_ARGS.join(' ')}\`: ${plain.size} objects ` +
        '(three library flavours of 3 TUs, test programs)',
    );
    print(`- tools: ${version('cmake')}; ninja ${version('ninja')}; ${version('g++')}; ${version('ccache')}`);
    print(`- accel: ${accel.which}`);
    print(
      `- \`ninja -j${JOBS}\` on ${availableParallelism()} CPUs, 1-minute load average ${fmt(loadBefore, 2)} before and ` +
        `${fmt(loadavg()[0] as number, 2)} after; each build in a fresh build directory (configure not timed); ` +
        `cold: empty cache; warm: median of ${WARM_RUNS}, every compile a hit (checked); compile steps: the .o ` +
        "steps' times in .ninja_log, summed (the links, alike for all, left out)\n",
    );
    const ccacheWarm = rows.find((r) => r.name.startsWith('ccache'))?.warm;
    const ratio = (ms: number, base: number | undefined) => (base === undefined ? '–' : fmt(ms / base, 2));
    const row = (name: string, t: BuildTime) =>
      `| ${name} | ${fmt(t.ms / 1000, 2)} | ${ratio(t.ms, ccacheWarm?.ms)} | ${fmt(t.compileMs / 1000, 2)} | ` +
      `${ratio(t.compileMs, ccacheWarm?.compileMs)} |`;
    print('| build | `ninja` seconds | ÷ ccache warm | compile steps, summed seconds | ÷ ccache warm |');
    print('| --- | ---: | ---: | ---: | ---: |');
    print(row('plain g++', plainTime));
    for (const r of rows) {
      print(row(`${r.name} cold`, r.cold));
      print(row(`${r.name} warm`, r.warm));
    }
    print(
      `\nCold and warm objects byte-identical to plain g++'s (worst build): ${rows.map((r) => `${r.name} ${r.identical}`).join('; ')}.`,
    );
    print('');
  } finally {
    for (const stop of stops) stop();
    rmSync(root, { recursive: true, force: true });
  }
}

interface BuildTime {
  /** `ninja`'s wall time. */
  ms: number;
  /** The compile steps' own times summed from .ninja_log: the links and archives, alike for all, left out. */
  compileMs: number;
}

/** A fresh build directory configured (not timed), then `ninja` (timed). */
function configureAndBuild(src: string, build: string, l: Launcher): BuildTime {
  rmSync(build, { recursive: true, force: true });
  const launcher = l.launcher ? [`-DCMAKE_CXX_COMPILER_LAUNCHER=${l.launcher}`] : [];
  run('cmake', ['-S', src, '-B', build, ...CMAKE_ARGS, ...launcher], { env: l.env });
  const start = performance.now();
  run('ninja', ['-C', build, `-j${JOBS}`], { env: l.env });
  const ms = performance.now() - start;
  // .ninja_log: a header line, then "start end mtime output hash" per step, in ms since ninja started.
  let compileMs = 0;
  for (const line of readFileSync(join(build, '.ninja_log'), 'utf8').split('\n').slice(1)) {
    const [begin, end, , output] = line.split('\t');
    if (output?.endsWith('.o')) compileMs += Number(end) - Number(begin);
  }
  return { ms, compileMs };
}

/**
 * accel's native client as the launcher, in a home of its own, installed by the single executable when it is
 * built (what users run), else by `node src/main.ts`; its daemon starts on the cold build's first compile.
 */
function accelLauncher(root: string, env: NodeJS.ProcessEnv) {
  const usable = existsSync(EXE) && spawnSync(EXE, ['--version'], { stdio: 'ignore' }).status === 0;
  const accel = accelHome(usable ? [EXE] : [process.execPath, MAIN], join(root, 'accel-home'), env);
  accel.masqueradeDir();
  const launcher: Launcher = {
    name: 'accel (`accel-cc` launcher + daemon)',
    launcher: join(accel.home, 'bin', 'accel-cc'),
    env,
    hits: accel.hits,
  };
  return {
    launcher,
    which: usable ? 'the single executable build/out/accel-linux-x64' : '`node src/main.ts` (no executable built)',
    stop: accel.stop,
  };
}
