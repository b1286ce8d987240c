import { createPrivateKey } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { replaceFileSync } from '../core/atomic-fs.ts';
import { makeDirs } from '../core/dirs.ts';
import { AccelError, errnoCode, fsError } from '../core/errors.ts';
import { homeLayout } from '../core/home-layout.ts';
import { certPaths } from '../net/paths.ts';
import { loadIdentity } from '../net/tls-identity.ts';

/**
 * The .bazelrc lines that point Bazel at the syncer's Remote Execution API with this machine's client
 * certificate. Two things a user would otherwise find out the hard way are done here:
 * - Bazel (netty) reads a client key only in PKCS#8; accel's keys are PKCS#1, so a PKCS#8 copy is written
 *   next to the key (0600).
 * - Debian's Bazel has netty's JDK ALPN support patched out, so grpcs:// fails ("JDK provider does not support
 *   ALPN protocol") unless netty finds OpenSSL through netty-tcnative. Debian ships that library under a name
 *   netty does not look for (libnetty-tcnative.so), and the library refuses to load through a symlink; a copy
 *   under the expected name in accel's home and a startup line naming its directory make it work.
 */
interface BazelFarmConfig {
  lines: string[];
  /** Files written for the lines to work (the PKCS#8 key, the netty-tcnative copy). */
  written: string[];
  warnings: string[];
}

/** Debian's Bazel: its server jar lives here, and its netty lacks JDK ALPN. */
const DEBIAN_BAZEL_JAR = '/usr/share/bazel/A-server.jar';
const DEBIAN_BAZEL_LIBS = '/usr/share/bazel';
const TCNATIVE = [
  '/usr/lib/x86_64-linux-gnu/jni/libnetty-tcnative.so',
  '/usr/lib/aarch64-linux-gnu/jni/libnetty-tcnative.so',
];

/** How Bazel should use the farm: what the syncer runs (farm.reapiRun) and how many actions to keep in flight. */
export interface BazelFarmPolicy {
  reapiRun: 'compilers' | 'any';
  /** Bazel's --jobs: the farm's cores plus the machine's own CPUs (transfers overlap; fallbacks run here). */
  jobs: number;
}

/**
 * The build lines for remote execution under a policy; the same flags mean the same in Bazel 4 through 7.
 * - `--spawn_strategy=remote,local` with `--remote_local_fallback`: an action the syncer refuses
 *   (PERMISSION_DENIED) or cannot run (no worker) runs here instead of failing the build.
 * - `compilers`: test runs are refused by design, so `--strategy=TestRunner=local` runs them here without
 *   asking first; compiles, links, archives and strip go remote.
 * - `--remote_timeout`: a long link or test may take longer than Bazel's 60 s default.
 */
export function executionLines(policy: BazelFarmPolicy): string[] {
  return [
    `build --jobs=${policy.jobs}`,
    'build --spawn_strategy=remote,local',
    'build --remote_local_fallback',
    ...(policy.reapiRun === 'compilers' ? ['build --strategy=TestRunner=local'] : []),
    'build --remote_timeout=600',
  ];
}

export function bazelFarmConfig(
  home: string,
  endpoint: string,
  mode: 'execute' | 'cache',
  policy: BazelFarmPolicy = { reapiRun: 'compilers', jobs: 1 },
): BazelFarmConfig {
  const identity = loadIdentity(home, 'client');
  const paths = certPaths(home);
  const pkcs8 = paths.keyPkcs8;
  const written: string[] = [];
  const warnings: string[] = [];
  const pem = createPrivateKey(identity.key).export({ type: 'pkcs8', format: 'pem' }) as string;
  if (readOrEmpty(pkcs8) !== pem) {
    replaceFileSync(pkcs8, pem, 0o600);
    written.push(pkcs8);
  }
  const lines = [
    mode === 'execute' ? `build --remote_executor=${endpoint}` : `build --remote_cache=${endpoint}`,
    `build --tls_certificate=${paths.caCert}`,
    `build --tls_client_certificate=${paths.cert}`,
    `build --tls_client_key=${pkcs8}`,
    // Actions see a fixed PATH, not the user's, so their keys match across machines (and across both modes).
    'build --incompatible_strict_action_env',
    ...(mode === 'execute' ? executionLines(policy) : []),
  ];
  if (existsSync(DEBIAN_BAZEL_JAR)) {
    const lib = TCNATIVE.find((p) => existsSync(p));
    if (lib) {
      const dir = homeLayout(home).bazel.jni;
      const copy = join(dir, 'libnetty_tcnative.so');
      if (readOrEmpty(copy, true) !== readOrEmpty(lib, true)) {
        makeDirs(dir);
        try {
          copyFileSync(lib, copy);
        } catch (err) {
          throw fsError(err, 'writing', copy);
        }
        written.push(copy);
      }
      lines.unshift(`startup --host_jvm_args=-Djava.library.path=${dir}:${DEBIAN_BAZEL_LIBS}`);
    } else {
      warnings.push(
        "Debian's Bazel speaks grpcs:// only through netty-tcnative: apt-get install libnetty-tcnative-jni, then run this again",
      );
    }
  }
  return { lines, written, warnings };
}

/** Replaces accel's farm block in WORKSPACE/.bazelrc (or appends one), leaving every other line alone. */
export function writeBazelrcBlock(workspace: string, lines: string[]): string {
  const file = join(workspace, '.bazelrc');
  if (!existsSync(join(workspace, 'WORKSPACE')) && !existsSync(join(workspace, 'WORKSPACE.bazel'))) {
    throw new AccelError('ACCEL_USAGE_NOT_A_WORKSPACE', `${workspace} has no WORKSPACE file`, {
      hint: 'pass the directory of a Bazel workspace to --write',
    });
  }
  const begin = '# accel farm (accel farm config bazel) begin';
  const end = '# accel farm end';
  const old = readOrEmpty(file);
  const kept = old.replace(new RegExp(`${escapeRegExp(begin)}\\n[\\s\\S]*?${escapeRegExp(end)}\\n?`), '');
  const separator = kept === '' || kept.endsWith('\n') ? '' : '\n';
  replaceFileSync(file, `${kept}${separator}${begin}\n${lines.join('\n')}\n${end}\n`);
  return file;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function readOrEmpty(path: string, binary = false): string {
  try {
    return binary ? readFileSync(path).toString('base64') : readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return '';
    throw fsError(err, 'reading', path);
  }
}
