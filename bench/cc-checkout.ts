// A CI runner's second checkout: libzstd (Debian's source, its own lib/Makefile, 33 compiles) built with
// `-g -fdebug-prefix-map=<checkout>=/src` in one job directory, then in another, through accel with base
// directories and through ccache with base_dir, each into its own empty cache. Counts the second checkout's
// hits and checks every one of its objects against plain gcc's in that checkout.
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { objectFiles } from '../test/helpers.ts';
import { accelHome, cacheFreeEnv, ccacheIn, sameObjects } from './cc-tools.ts';
import { debianSource } from './debian-source.ts';
import { firstLine, fmt, has, run } from './util.ts';

const ROOT = resolve(import.meta.dirname, '..');
const MAIN = join(ROOT, 'src', 'main.ts');
const EXE = join(ROOT, 'build', 'out', 'accel-linux-x64');
/** Unpacked once and reused by later runs; never written to after the rename that creates it. */
const ZSTD_CACHE = join(tmpdir(), 'accel-bench-zstd');
const JOBS = 2;

/** One way of compiling: make's `CC`, its environment, and the hits it has counted so far. */
interface Tool {
  name: string;
  cc: string;
  env: NodeJS.ProcessEnv;
  hits: () => number;
  stop?: () => void;
}

interface Row {
  name: string;
  first: number;
  second: number;
  hits: number;
  identical: string;
}

export async function benchCcCheckout(print: (line: string) => void): Promise<void> {
  print('## Compile cache: a second checkout (`bench/cc-checkout.ts`)\n');
  const zstd = debianSource('libzstd', ZSTD_CACHE, 'lib/zstd.h');
  if ('skipped' in zstd) {
    print(`skipped: ${zstd.skipped}\n`);
    return;
  }
  const loadBefore = loadavg()[0] as number;
  const root = mkdtempSync(join(tmpdir(), 'accel-bench-checkout-'));
  const tools: Tool[] = [];
  try {
    // Two job directories of equal depth, as a runner makes them; the cache homes live outside both.
    const jobs = join(root, 'builds');
    const [a, b] = ['1041', '1042'].map((n) => join(jobs, n, 'zstd')) as [string, string];
    for (const ck of [a, b]) cpSync(zstd.root, ck, { recursive: true });
    const env = cacheFreeEnv();
    const plainSecond = build(b, 'gcc', env);
    const plainObjects = objects(b);
    const tus = plainObjects.size;

    const launcher = accelLauncher(root, env);
    tools.push(nativeClient(root, 'accel, base dirs', launcher, { ...env, ACCEL_CC_BASEDIRS: jobs }));
    tools.push(nativeClient(root, 'accel, no base dirs', launcher, env));
    if (has('ccache')) {
      const ccache = ccacheIn(root, { ...env, CCACHE_BASEDIR: jobs });
      tools.push({ name: 'ccache, base_dir', cc: 'ccache gcc', ...ccache });
    }

    const rows: Row[] = [];
    for (const tool of tools) {
      const first = build(a, tool.cc, tool.env);
      const before = tool.hits();
      const second = build(b, tool.cc, tool.env);
      rows.push({
        name: tool.name,
        first,
        second,
        hits: tool.hits() - before,
        identical: sameObjects(plainObjects, objects(b)),
      });
    }

    const version = (cmd: string) => (has(cmd) ? firstLine(cmd, ['--version']) : `${cmd} not installed, no row`);
    print(
      `- source: libzstd ${zstd.version} from \`apt-get source libzstd\`, its own \`make -C lib -j${JOBS} libzstd.a\` ` +
        `(${tus} compiles, relative paths, \`-MMD -MP\`), \`MOREFLAGS="-g -fdebug-prefix-map=<checkout>=/src"\``,
    );
    print(
      `- checkouts \`${relative(root, a)}\` then \`${relative(root, b)}\` under one base directory (\`ACCEL_CC_BASEDIRS\`, ` +
        `\`CCACHE_BASEDIR\`); each tool starts from an empty cache; accel through its native client (\`accel-cc\` + daemon), ${launcher.which}`,
    );
    print(
      `- ${version('gcc')}; ${version('ccache')}; ${availableParallelism()} CPUs, 1-minute load ${fmt(loadBefore, 2)} ` +
        `before and ${fmt(loadavg()[0] as number, 2)} after\n`,
    );
    const ccacheRow = rows.find((r) => r.name.startsWith('ccache'));
    const ratio = (ms: number) => (ccacheRow ? fmt(ms / ccacheRow.second, 2) : '–');
    print(
      '| build | 1st checkout s | 2nd checkout s | 2nd ÷ ccache 2nd | 2nd checkout hits | 2nd objects identical to plain gcc |',
    );
    print('| --- | ---: | ---: | ---: | ---: | --- |');
    print(`| plain gcc | | ${fmt(plainSecond / 1000, 2)} | ${ratio(plainSecond)} | | |`);
    for (const r of rows) {
      print(
        `| ${r.name} | ${fmt(r.first / 1000, 2)} | ${fmt(r.second / 1000, 2)} | ${ratio(r.second)} | ${r.hits}/${tus} | ${r.identical} |`,
      );
    }
    print('');
  } finally {
    for (const tool of tools) tool.stop?.();
    rmSync(root, { recursive: true, force: true });
  }
}

/** A clean build of libzstd.a in a checkout with its own Makefile; ms. */
function build(checkout: string, cc: string, env: NodeJS.ProcessEnv): number {
  rmSync(join(checkout, 'lib', 'obj'), { recursive: true, force: true });
  rmSync(join(checkout, 'lib', 'libzstd.a'), { force: true });
  const start = performance.now();
  run(
    'make',
    [
      '-C',
      join(checkout, 'lib'),
      `-j${JOBS}`,
      'libzstd.a',
      `CC=${cc}`,
      `MOREFLAGS=-g -fdebug-prefix-map=${checkout}=/src`,
    ],
    { env },
  );
  return performance.now() - start;
}

/** The objects of a build; the Makefile's obj/conf_<hash>/ depends on CC, and every build starts without obj/. */
function objects(checkout: string): Map<string, Buffer> {
  const obj = join(checkout, 'lib', 'obj');
  const [conf] = readdirSync(obj).filter((d) => d.startsWith('conf_'));
  if (!conf) throw new Error(`no conf_* directory in ${obj}`);
  return objectFiles(join(obj, conf));
}

/** accel as users run it: the single executable when built and current enough, else `node src/main.ts`. */
function accelLauncher(root: string, env: NodeJS.ProcessEnv): { argv: string[]; which: string } {
  const probe = join(root, 'probe-home');
  if (existsSync(EXE) && run(EXE, ['--home', probe, 'cc', '--help'], { env }).includes('--explain')) {
    return { argv: [EXE], which: `accel ${EXE.slice(ROOT.length + 1)} (built ${statSync(EXE).mtime.toISOString()})` };
  }
  return {
    argv: [process.execPath, MAIN],
    which: 'accel as `node src/main.ts` (the single executable is not built or older)',
  };
}

/** The native client through its masquerade link, in a home of its own; its daemon starts on the first compile. */
function nativeClient(root: string, name: string, launcher: { argv: string[] }, env: NodeJS.ProcessEnv): Tool {
  const accel = accelHome(launcher.argv, join(root, `home-${name.replace(/\W+/g, '-')}`), env);
  return { name, cc: join(accel.masqueradeDir(), 'gcc'), env, hits: accel.hits, stop: accel.stop };
}
