import assert from 'node:assert/strict';
import { type ChildProcess, type SpawnOptions, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  chownSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative, resolve } from 'node:path';
import { test as nodeTest, type TestContext, type TestOptions } from 'node:test';

export const ROOT = resolve(import.meta.dirname, '..');
export const MAIN = join(ROOT, 'src', 'main.ts');

/** A fresh directory removed when the test ends, with any compile-cache daemon of a home inside it stopped. */
export function tempDir(t: TestContext, prefix = 'accel-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => {
    stopDaemons(dir);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/**
 * A native client starts a daemon on demand, and it would outlive its test (600 s idle time-out) with its home
 * gone: every home up to three levels below `dir` has its daemon, if any, stopped.
 */
function stopDaemons(dir: string, depth = 0): void {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    if (e.name === 'run') {
      try {
        process.kill(Number(readFileSync(join(dir, 'run', 'cc-daemon.pid'), 'utf8')), 'SIGTERM');
      } catch {
        // no daemon, or already gone
      }
    } else if (depth < 3 && e.name !== 'node_modules' && e.name !== 'blobs') stopDaemons(join(dir, e.name), depth + 1);
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  input?: Buffer | string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this uid/gid (tests that need permissions to bite run as nobody when we are root). */
  user?: { uid: number; gid: number };
  /** Wrap the command, e.g. ['bash', '-c', 'ulimit -f 64; exec "$@"', 'x']. */
  wrapper?: string[];
}

/** Runs the accel CLI from source in a child process, as a user would. */
export function runAccel(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return runCommand(process.execPath, [MAIN, ...args], options);
}

export function runCommand(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const argv = [...(options.wrapper ?? []), cmd, ...args];
  const spawnOptions: SpawnOptions = {
    cwd: options.cwd,
    // A cross conda build links against the machine's cross libc unless the test serves the pinned sysroot's
    // .debs from loopback and says so (test/sysroot-debs.ts): no test fetches them from the Debian archive.
    env: { ...cleanEnv(), ACCEL_CONDA_SYSROOT: 'machine', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(options.user ?? {}),
  };
  return new Promise((resolvePromise, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), spawnOptions);
    const out: Buffer[] = [];
    let err = '';
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, stdout: Buffer.concat(out), stderr: err }));
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input ?? '');
  });
}

/** The environment without any ACCEL_* settings of the developer's shell. */
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ACCEL_')));
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Every file under `dir`, recursively, as paths relative to it. */
export function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
  } catch {
    return [];
  }
}

/** Every object file (`.o`) under `dir`, by its path relative to `dir`, with its bytes. */
export function objectFiles(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith('.o')) {
      const path = join(e.parentPath, e.name);
      out.set(relative(dir, path), readFileSync(path));
    }
  }
  return out;
}

export const NOBODY = { uid: 65534, gid: 65534 };

/** When running as root, permissions do not bite: such tests run the CLI as nobody, owning `paths`. */
export function unprivileged(...paths: string[]): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const p of paths) chownSync(p, NOBODY.uid, NOBODY.gid);
  return NOBODY;
}

/**
 * Polls `probe` every 20 ms until it returns a value other than undefined or false (a probe that throws counts
 * as not yet), and returns that value: a wait for a state, never a timed assertion.
 */
export async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 60_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Asserts that a command succeeded (its output in the message if not); returns what it wrote to stdout. */
export function ok(r: RunResult, what = ''): string {
  assert.equal(r.code, 0, `${what ? `${what}: ` : ''}exit ${r.code} (${r.signal})\n${r.stdout}\n${r.stderr}`);
  return r.stdout.toString();
}

/** The same for commands that report on stderr (compilers, servers, the cc client): returns stderr. */
export function okStderr(r: RunResult, what = ''): string {
  ok(r, what);
  return r.stderr;
}

/** A home with the native client and its masquerade links installed: the links' directory, the client. */
export async function nativeClientHome(home: string): Promise<{ home: string; masq: string; client: string }> {
  const masq = ok(await runAccel(['--home', home, 'cc', '--masquerade-dir']), 'accel cc --masquerade-dir').trim();
  return { home, masq, client: join(home, 'bin', 'accel-cc') };
}

/** The home's compile-cache counters (`accel --json cc --stats`): `{ hit: 2, miss: 1 }`. */
export async function ccCounters(home: string): Promise<Record<string, number>> {
  return JSON.parse(ok(await runAccel(['--home', home, '--json', 'cc', '--stats']), 'accel cc --stats')).counters;
}

/** Asserts a clean failure: the exit code, the stable error code on stderr, and no stack trace. */
export function failed(r: RunResult, exitCode: number, code: string): void {
  assert.equal(r.code, exitCode, `expected exit ${exitCode}, got ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`));
  assert.doesNotMatch(r.stderr, /internal error/);
}

/** The Debian package of each tool a test may need, for the skip message (scripts/setup.sh --test installs them). */
const TOOL_PACKAGES: Record<string, string> = {
  gcc: 'gcc',
  'g++': 'g++',
  cc: 'gcc',
  make: 'make',
  strip: 'binutils',
  readelf: 'binutils',
  ar: 'binutils',
  'aarch64-linux-gnu-gcc': 'gcc-aarch64-linux-gnu',
  'aarch64-linux-gnu-g++': 'g++-aarch64-linux-gnu',
  'qemu-aarch64-static': 'qemu-user-static',
  bwrap: 'bubblewrap',
  ccache: 'ccache',
  curl: 'curl',
  nginx: 'nginx',
  chromium: 'chromium',
  script: 'bsdutils',
  bazel: 'bazel-bootstrap',
  'apt-get': 'apt',
  'apt-ftparchive': 'apt-utils',
  'dpkg-deb': 'dpkg',
  gpg: 'gnupg',
  gpgconf: 'gnupg',
  xz: 'xz-utils',
  patch: 'patch',
  bzip2: 'bzip2',
  unzip: 'unzip',
  zip: 'zip',
  zstd: 'zstd',
  unshare: 'util-linux',
  autoreconf: 'autoconf',
  libtoolize: 'libtool',
  cmake: 'cmake',
  meson: 'meson',
  ninja: 'ninja-build',
  'pkg-config': 'pkgconf',
  python3: 'python3',
  perl: 'perl',
  'clang-cl': 'clang-tools',
  'clang-cl-14': 'clang-tools',
};

/**
 * The MSVC driver clang-cl: `clang-cl`, or Debian's versioned `clang-cl-N` (package clang-tools), first on PATH;
 * undefined when there is none (`needsTools('clang-cl')` then says what to install).
 */
export function findClangCl(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    const found = names.filter((n) => /^clang-cl(-\d+)?$/.test(n)).sort();
    if (found[0]) return join(dir, found[0]);
  }
  return undefined;
}

/** Whether `tool` is an executable on PATH. */
export function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Test options that skip, naming the tools and their packages, when a system tool is missing: a fresh machine
 * says what to install instead of failing. CI installs everything (scripts/setup.sh --test) and fails the run
 * when any test skips, this way or another, unless test/opt-in.txt lists it (.ci/run reads the report).
 */
export function needsTools(...tools: string[]): { skip: string | false } {
  const missing = tools.filter((tool) => !onPath(tool));
  if (missing.length === 0) return { skip: false };
  const packages = [...new Set(missing.map((t) => TOOL_PACKAGES[t] ?? t))];
  return {
    skip: `missing tool: ${missing.join(', ')} (install ${packages.join(' ')}, or run bash scripts/setup.sh --test)`,
  };
}

/**
 * `test` for a file whose every test needs `tools`: `const test = testNeeding('gcc', 'make')` in place of
 * node:test's. Options given to a test are kept; the skip is added when a tool is missing.
 */
export function testNeeding(...tools: string[]): typeof nodeTest {
  const wrapped = (name: string, ...rest: unknown[]) => {
    const fn = rest.pop();
    const options = (rest[0] ?? {}) as TestOptions;
    const needed = needsTools(...tools);
    return nodeTest(name, { ...options, skip: options.skip || needed.skip }, fn as never);
  };
  return Object.assign(wrapped, nodeTest) as unknown as typeof nodeTest;
}

/**
 * nginx in the foreground (`-p dir -c conf`, the config saying `daemon off`), until `ready()` says it serves;
 * a start that fails says why (its stderr and dir/error.log). Stopped (SIGQUIT) when the test ends.
 */
export async function startNginx(
  t: TestContext,
  dir: string,
  conf: string,
  ready: () => Promise<boolean>,
): Promise<void> {
  const child: ChildProcess = spawn('nginx', ['-p', dir, '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise((resolve) => child.on('close', resolve));
  t.after(async () => {
    child.kill('SIGQUIT');
    await exited;
  });
  const errorLog = join(dir, 'error.log');
  await until(
    `nginx in ${dir}`,
    async () => {
      if (child.exitCode !== null) {
        throw new Error(`nginx exited: ${stderr}${existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : ''}`);
      }
      return ready().catch(() => false);
    },
    20_000,
  );
}

/**
 * `bazel --batch build TARGET FLAGS` in `ws` with a fresh output root and HOME of its own (nothing cached
 * locally, no user rc file), killed after `timeoutSeconds`; the time it took goes to the test's diagnostics.
 */
export async function bazelBuild(
  t: TestContext,
  ws: string,
  options: { target: string; label: string; flags?: string[]; timeoutSeconds?: number },
): Promise<RunResult> {
  const scratch = mkdtempSync(join(tmpdir(), 'accel-bazel-'));
  t.after(() => {
    spawnSync('chmod', ['-R', 'u+w', scratch]);
    rmSync(scratch, { recursive: true, force: true });
  });
  mkdirSync(join(scratch, 'home'));
  const started = performance.now();
  const r = await runCommand(
    'bazel',
    ['--batch', `--output_user_root=${join(scratch, 'output')}`, 'build', options.target, ...(options.flags ?? [])],
    { cwd: ws, env: { HOME: join(scratch, 'home') }, wrapper: ['timeout', String(options.timeoutSeconds ?? 300)] },
  );
  t.diagnostic(`${options.label}: bazel exit ${r.code} after ${Math.round(performance.now() - started)} ms`);
  return r;
}
