// The compile cache on lua 5.4 (Debian's source, 34 TUs): plain gcc, accel, ccache and sccache, cold and warm
// `make -j2`, and the latency of one hit, each spawned the way make would spawn it.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { objectFiles } from '../test/helpers.ts';
import { accelHome, cacheFreeEnv, ccacheIn, sameObjects } from './cc-tools.ts';
import { debianSource } from './debian-source.ts';
import { firstLine, fmt, has, median, medianMs, run } from './util.ts';

const ROOT = resolve(import.meta.dirname, '..');
const MAIN = join(ROOT, 'src', 'main.ts');
const EXE = join(ROOT, 'build', 'out', 'accel-linux-x64');
/** Unpacked once and reused by later runs; never written to after the rename that creates it. */
const LUA_CACHE = join(tmpdir(), 'accel-bench-lua');
const WARM_RUNS = 3;
const HIT_RUNS = 51;
const JOBS = 2;
// Lua's own `linux` target flags. Debian's src/Makefile builds every TU twice (C and C++) through libtool, which
// would measure libtool's shell start-up, so a generated Makefile compiles each .c once instead.
const CFLAGS = ['-std=gnu99', '-O2', '-Wall', '-Wextra', '-DLUA_COMPAT_5_3', '-DLUA_USE_LINUX'];
const MAKEFILE = `CFLAGS = ${CFLAGS.join(' ')}
OBJS = $(patsubst %.c,%.o,$(wildcard *.c))
all: $(OBJS)
%.o: %.c
\t$(CC) $(CFLAGS) -c $< -o $@
clean:
\trm -f *.o
`;

/** One way of compiling: the `CC` make gets, its environment, and how many hits it has counted so far. */
interface Compiler {
  name: string;
  cc: string[];
  env: NodeJS.ProcessEnv;
  hits: () => number;
}

interface BuildTimes {
  cold: number;
  warm: number;
}

export async function benchCc(print: (line: string) => void): Promise<void> {
  print('## Compile cache (`bench/cc.ts`)\n');
  const lua = debianSource('lua5.4', LUA_CACHE, 'lvm.c');
  if ('skipped' in lua) {
    print(`skipped: ${lua.skipped}\n`);
    return;
  }
  const loadBefore = loadavg()[0] as number;
  const root = mkdtempSync(join(tmpdir(), 'accel-bench-cc-'));
  const stops: (() => void)[] = [];
  try {
    const build = join(root, 'lua');
    mkdirSync(build);
    for (const f of readdirSync(lua.src)) if (/\.[ch]$/.test(f)) copyFileSync(join(lua.src, f), join(build, f));
    writeFileSync(join(build, 'Makefile'), MAKEFILE);
    // Debian's patched luaconf.h includes this header, which its debian/rules writes before building.
    const multiarch = firstLine('gcc', ['-print-multiarch']);
    writeFileSync(join(build, 'lua5.4-deb-multiarch.h'), `#define DEB_HOST_MULTIARCH "${multiarch}"\n`);
    const tus = readdirSync(build).filter((f) => f.endsWith('.c')).length;
    const env = cacheFreeEnv();

    run('make', ['-C', build, 'clean'], { env });
    const plain = timeMake(build, ['gcc'], env);
    const plainObjects = objectFiles(build);

    const accel = accelCompiler(root, env);
    const native = nativeClient(root, env, accel.launcher);
    stops.push(native.stop);
    const compilers: Compiler[] = [accel.compiler, native.compiler];
    if (has('ccache')) compilers.push({ name: 'ccache', cc: ['ccache', 'gcc'], ...ccacheIn(root, env) });
    if (has('sccache')) {
      const sccache = await sccacheCompiler(root, env);
      stops.push(sccache.stop);
      compilers.push(sccache.compiler);
    }

    const builds = new Map<string, BuildTimes>();
    const identical = new Map<string, string>();
    for (const c of compilers) {
      builds.set(c.name, coldAndWarm(build, c, tus));
      identical.set(c.name, sameObjects(plainObjects, objectFiles(build)));
    }

    // The make above left every object in place, so this exact command line is a hit for every compiler.
    const lvm = ['-c', 'lvm.c', '-o', 'lvm.o'];
    const gccOnce = await medianMs(3, () => run('gcc', [...CFLAGS, ...lvm], { cwd: build, env }));
    const hitMs = new Map<string, number>();
    const extra = [native.viaDaemon, ...(accel.alternative ? [accel.alternative] : [])];
    for (const c of [...compilers, ...extra]) {
      hitMs.set(c.name, await hitLatency(build, c, lvm));
    }

    const version = (cmd: string) => (has(cmd) ? firstLine(cmd, ['--version']) : `${cmd} not installed, no rows`);
    print(`- source: lua ${lua.version} from \`apt-get source lua5.4\`, ${tus} TUs, \`${CFLAGS.join(' ')}\``);
    print(`- compilers: ${version('gcc')}; ${version('ccache')}; ${version('sccache')}; ${accel.which}`);
    print(
      `- \`make -j${JOBS}\` on ${availableParallelism()} CPUs, 1-minute load average ${fmt(loadBefore, 2)} before and ` +
        `${fmt(loadavg()[0] as number, 2)} after; cold: empty cache; warm: \`make clean\` then \`make\`, median of ${WARM_RUNS}\n`,
    );
    const ccacheWarm = builds.get('ccache')?.warm;
    const ratio = (ms: number, base: number | undefined) => (base === undefined ? '–' : fmt(ms / base, 2));
    print('| build | seconds | ÷ ccache warm |');
    print('| --- | ---: | ---: |');
    print(`| plain gcc | ${fmt(plain / 1000, 2)} | ${ratio(plain, ccacheWarm)} |`);
    for (const [name, t] of builds) {
      print(`| ${name} cold | ${fmt(t.cold / 1000, 2)} | ${ratio(t.cold, ccacheWarm)} |`);
      print(`| ${name} warm | ${fmt(t.warm / 1000, 2)} | ${ratio(t.warm, ccacheWarm)} |`);
    }
    const ccacheHit = hitMs.get('ccache');
    print(`\nOne \`lvm.c\` compile that hits, median of ${HIT_RUNS} processes each (spawn cost included alike):\n`);
    print('| one hit | ms | ÷ ccache |');
    print('| --- | ---: | ---: |');
    for (const [name, ms] of hitMs) print(`| ${name} | ${fmt(ms)} | ${ratio(ms, ccacheHit)} |`);
    print(`| plain gcc (no cache, median of 3) | ${fmt(gccOnce)} | ${ratio(gccOnce, ccacheHit)} |`);
    print(`\nWarm objects byte-identical to plain gcc's: ${[...identical].map(([n, v]) => `${n} ${v}`).join('; ')}.`);
    print('');
  } finally {
    for (const stop of stops) stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/** Cold build into an empty cache, then the median of warm rebuilds; every warm compile must be a hit. */
function coldAndWarm(build: string, c: Compiler, tus: number): BuildTimes {
  run('make', ['-C', build, 'clean'], { env: c.env });
  const cold = timeMake(build, c.cc, c.env);
  const before = c.hits();
  const warms: number[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    run('make', ['-C', build, 'clean'], { env: c.env });
    warms.push(timeMake(build, c.cc, c.env));
  }
  const hits = c.hits() - before;
  if (hits !== WARM_RUNS * tus) throw new Error(`${c.name}: ${hits} hits in ${WARM_RUNS} warm builds of ${tus} TUs`);
  return { cold, warm: median(warms) };
}

async function hitLatency(build: string, c: Compiler, args: string[]): Promise<number> {
  const [cmd, ...pre] = c.cc as [string, ...string[]];
  const argv = [...pre, ...CFLAGS, ...args];
  run(cmd, argv, { cwd: build, env: c.env }); // warm the page cache and the compiler's own caches
  const before = c.hits();
  const ms = await medianMs(HIT_RUNS, () => run(cmd, argv, { cwd: build, env: c.env }));
  const hits = c.hits() - before;
  if (hits !== HIT_RUNS) throw new Error(`${c.name}: ${hits} hits in ${HIT_RUNS} runs of one cached compile`);
  return ms;
}

interface AccelChoice {
  compiler: Compiler;
  /** How to run accel: the executable, or node and the entry script. */
  launcher: string[];
  /** `node src/main.ts`, timed beside the single executable for the hit row only. */
  alternative?: Compiler;
  which: string;
}

/** The single executable when it is built (what users run), and `node src/main.ts` beside it for the hit row. */
function accelCompiler(root: string, env: NodeJS.ProcessEnv): AccelChoice {
  const home = join(root, 'accel-home');
  const make = (name: string, launcher: string[]): Compiler => ({
    name: `${name} (\`accel cc --\`, no daemon)`,
    cc: [...launcher, '--home', home, 'cc', '--', 'gcc'],
    env,
    hits: accelHome(launcher, home, env).hits,
  });
  const node = make('accel (`node src/main.ts`)', [process.execPath, MAIN]);
  const viaNode = (why: string): AccelChoice => ({
    compiler: { ...node, name: 'accel' },
    launcher: [process.execPath, MAIN],
    which: `accel run as \`node src/main.ts\` (${why})`,
  });
  if (!existsSync(EXE)) return viaNode('build/out/accel-linux-x64 is not built');
  const built = statSync(EXE).mtimeMs;
  const when = `built ${new Date(built).toISOString()}${newestMtime(join(ROOT, 'src')) > built ? ', before the last edit in src/' : ''}`;
  if (spawnSync(EXE, ['--home', home, 'cc', '--stats'], { env, stdio: 'ignore' }).status !== 0) {
    return viaNode(`build/out/accel-linux-x64, ${when}, has no \`cc\` command yet: \`npm run build\` to use it`);
  }
  return {
    compiler: make('accel', [EXE]),
    launcher: [EXE],
    alternative: node,
    which: `accel run as the single executable build/out/accel-linux-x64 (${when})`,
  };
}

/**
 * The native client through the masquerade link, in its own home: the daemon starts on the cold build's
 * first compile, as it would for a user. `viaDaemon` is `accel cc --` with that daemon running.
 */
function nativeClient(root: string, env: NodeJS.ProcessEnv, launcher: string[]) {
  const accel = accelHome(launcher, join(root, 'accel-native-home'), env);
  const masq = accel.masqueradeDir();
  return {
    compiler: { name: 'accel native client (`accel-cc` + daemon)', cc: [join(masq, 'gcc')], env, hits: accel.hits },
    viaDaemon: {
      name: 'accel (`accel cc --`, daemon running)',
      cc: [...launcher, '--home', accel.home, 'cc', '--', 'gcc'],
      env,
      hits: accel.hits,
    },
    stop: accel.stop,
  };
}

/** sccache on its own port and directory, so a developer's sccache server is neither used nor disturbed. */
async function sccacheCompiler(
  root: string,
  env: NodeJS.ProcessEnv,
): Promise<{ compiler: Compiler; stop: () => void }> {
  const scEnv = { ...env, SCCACHE_DIR: join(root, 'sccache'), SCCACHE_SERVER_PORT: String(await freePort()) };
  run('sccache', ['--start-server'], { env: scEnv });
  return {
    compiler: {
      name: 'sccache',
      cc: ['sccache', 'gcc'],
      env: scEnv,
      hits: () => {
        const out = JSON.parse(run('sccache', ['--show-stats', '--stats-format', 'json'], { env: scEnv }));
        const counts: Record<string, number> = out.stats.cache_hits.counts;
        return Object.values(counts).reduce((a, b) => a + b, 0);
      },
    },
    stop: () => spawnSync('sccache', ['--stop-server'], { env: scEnv, stdio: 'ignore' }),
  };
}

function timeMake(build: string, cc: string[], env: NodeJS.ProcessEnv): number {
  const start = performance.now();
  run('make', ['-C', build, `-j${JOBS}`, `CC=${cc.join(' ')}`], { env });
  return performance.now() - start;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}
