// The compile caches the cc benches compare, set up alike in each: an environment free of any cache's settings,
// ccache and accel each in a directory of their own with their hits counted, and objects (test/helpers.ts's
// objectFiles) compared with plain gcc's.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './util.ts';

/** The environment without any cache's or build's own settings, so a developer's configuration cannot skew the numbers. */
export function cacheFreeEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(CCACHE_|SCCACHE_|ACCEL_|MAKEFLAGS$|MFLAGS$|MAKELEVEL$|CMAKE_|CXX$|CC$|CXXFLAGS$)/.test(k)) env[k] = v;
  }
  return env;
}

/** ccache with an empty configuration and a cache directory under `root`: its environment and its hits so far. */
export function ccacheIn(root: string, env: NodeJS.ProcessEnv): { env: NodeJS.ProcessEnv; hits: () => number } {
  const config = join(root, 'ccache.conf');
  mkdirSync(join(root, 'ccache'), { recursive: true });
  writeFileSync(config, '');
  const ccEnv = { ...env, CCACHE_DIR: join(root, 'ccache'), CCACHE_CONFIGPATH: config };
  return {
    env: ccEnv,
    hits: () => {
      const stats = new Map(
        run('ccache', ['--print-stats'], { env: ccEnv })
          .trim()
          .split('\n')
          .map((l) => l.split('\t') as [string, string]),
      );
      return Number(stats.get('direct_cache_hit') ?? 0) + Number(stats.get('preprocessed_cache_hit') ?? 0);
    },
  };
}

/** accel, run as `argv` (the executable, or node and the entry script), in a home of its own. */
export interface AccelHome {
  home: string;
  /** `accel --home HOME ARGS`; its stdout. */
  accel: (args: string[]) => string;
  /** Installs the native client and its masquerade links; the directory of the links. */
  masqueradeDir: () => string;
  /** The compiles answered from the cache so far, locally or remotely. */
  hits: () => number;
  /** Stops the home's daemon, if one runs. */
  stop: () => void;
}

export function accelHome(argv: string[], home: string, env: NodeJS.ProcessEnv): AccelHome {
  const [cmd, ...pre] = argv as [string, ...string[]];
  const accel = (args: string[]) => run(cmd, [...pre, '--home', home, ...args], { env });
  return {
    home,
    accel,
    masqueradeDir: () => accel(['cc', '--masquerade-dir']).trim(),
    hits: () => {
      const counters: Record<string, number> = JSON.parse(accel(['--json', 'cc', '--stats'])).counters;
      return (counters.hit ?? 0) + (counters['remote hit'] ?? 0);
    },
    stop: () => {
      spawnSync(cmd, [...pre, '--home', home, 'cc', 'daemon', '--stop'], { env, stdio: 'ignore' });
    },
  };
}

/** "yes (n/n)" when `actual` holds exactly `expected`'s objects, byte for byte; else "NO (same/n)". */
export function sameObjects(expected: Map<string, Buffer>, actual: Map<string, Buffer>): string {
  const same = [...expected].filter(([name, bytes]) => actual.get(name)?.equals(bytes)).length;
  const verdict = same === expected.size && actual.size === expected.size ? 'yes' : 'NO';
  return `${verdict} (${same}/${expected.size})`;
}
