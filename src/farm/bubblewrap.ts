import { spawnSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AccelError, errnoCode } from '../core/errors.ts';

/**
 * The worker's sandbox: every job runs under bubblewrap (the tool Flatpak and sccache-dist use) in fresh
 * user, mount, pid, network, ipc and uts namespaces. Inside, only the toolchain (read-only), the job
 * directory (at a per-job path) and an empty /tmp exist; there is no network; rlimits bound CPU time,
 * memory, file size and processes. A worker running as root also drops each job to an unprivileged uid.
 */
interface SandboxLimits {
  cpuSeconds: number;
  memoryBytes: number;
  /** Largest file a job may write (outputs, temporaries). */
  fileBytes: number;
  /** Size of the job's private /tmp. */
  tmpBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  cpuSeconds: 600,
  memoryBytes: 8 * 1024 ** 3,
  fileBytes: 2 * 1024 ** 3,
  tmpBytes: 2 * 1024 ** 3,
};

/** Who a job runs as: the worker's own uid, or (worker as root) an unprivileged one. */
export interface SandboxUser {
  uid: number;
  gid: number;
  name: string;
}

/** The job's uid when the worker is root: `nobody` unless told otherwise; undefined when not root. */
export function sandboxUser(name = 'nobody'): SandboxUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (!line || !uid || !gid || Number(uid) === 0) {
    throw new AccelError('ACCEL_WORKER_NO_SANDBOX_USER', `no unprivileged user '${name}' to run jobs as`, {
      hint: 'create one (useradd --system accel-job) and pass --sandbox-user, or run the worker as a non-root user',
    });
  }
  return { name, uid: Number(uid), gid: Number(gid) };
}

/** The toolchain a job sees: the system's program and library trees, read-only. */
function systemMounts(): string[] {
  const args: string[] = [];
  for (const dir of ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    let stat: ReturnType<typeof lstatSync>;
    try {
      stat = lstatSync(dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue;
      throw err;
    }
    if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else args.push('--ro-bind', dir, dir);
  }
  // Debian's cc/c++ go through /etc/alternatives; the dynamic loader reads its cache. The rest of /etc stays out.
  args.push('--perms', '0755', '--dir', '/etc');
  for (const path of ['/etc/alternatives', '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d']) {
    if (existsSync(path)) args.push('--ro-bind', path, path);
  }
  return args;
}

/**
 * A compiler outside /usr brings its own tree: its bin directory and the siblings a toolchain keeps beside it
 * (lib, libexec, include, the target's `<triplet>` directory), never the whole parent (a compiler in ~/bin
 * must not show the home directory).
 */
function toolchainMounts(compilers: string[]): string[] {
  const key = compilers.join('\0');
  let mounts = toolchainCache.get(key);
  if (!mounts) {
    mounts = findToolchainMounts(compilers);
    toolchainCache.set(key, mounts);
  }
  return mounts;
}

/** A worker's compilers do not move while it runs: their mounts are worked out once. */
const toolchainCache = new Map<string, string[]>();

function findToolchainMounts(compilers: string[]): string[] {
  const dirs = new Set<string>();
  for (const compiler of compilers) {
    const bin = dirname(realpathSync(compiler));
    if (bin.startsWith('/usr/')) continue;
    dirs.add(bin);
    const prefix = dirname(bin);
    let names: string[] = [];
    try {
      names = readdirSync(prefix);
    } catch {
      // an unreadable prefix: the bin directory alone
    }
    for (const name of names) {
      if (/^(lib|lib32|lib64|libexec|include)$|-linux-/.test(name)) dirs.add(join(prefix, name));
    }
  }
  // bwrap makes missing parents with the host's modes; a private parent (0700) would hide the bind from the job.
  const parents = new Set<string>();
  for (const d of dirs) for (let p = dirname(d); p !== '/' && p !== '/tmp'; p = dirname(p)) parents.add(p);
  return [
    ...[...parents].sort().flatMap((p) => ['--perms', '0755', '--dir', p]),
    ...[...dirs].flatMap((d) => ['--ro-bind', d, d]),
  ];
}

interface SandboxCommand {
  file: string;
  args: string[];
}

/**
 * The command that runs `compiler args` confined, with the job directory `host` at `jobRoot`. A worker that
 * is not root gets a user namespace of its own. A root worker sets the namespaces up as root (so the job's uid
 * needs no access to the worker's home) and the job then drops to `user` with setpriv: no capabilities, no
 * way back (no_new_privs), and the input files it was given owned by root and read-only to it.
 */
export function sandboxCommand(options: {
  compiler: string;
  args: string[];
  host: string;
  jobRoot: string;
  cwd: string;
  toolchain: string[];
  limits: SandboxLimits;
  user: SandboxUser | undefined;
}): SandboxCommand {
  const { limits, user } = options;
  const namespaces = user
    ? ['--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts', '--unshare-cgroup-try']
    : ['--unshare-all'];
  const drop = user
    ? [
        'setpriv',
        `--reuid=${user.uid}`,
        `--regid=${user.gid}`,
        '--clear-groups',
        '--inh-caps=-all',
        '--bounding-set=-all',
        '--no-new-privs',
        '--',
      ]
    : [];
  return {
    file: 'prlimit',
    args: [
      `--cpu=${limits.cpuSeconds}`,
      `--as=${limits.memoryBytes}`,
      `--fsize=${limits.fileBytes}`,
      '--core=0',
      '--nofile=1024',
      '--',
      'bwrap',
      ...namespaces,
      '--die-with-parent',
      '--new-session',
      ...systemMounts(),
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      '--perms',
      '1777',
      '--size',
      String(limits.tmpBytes),
      '--tmpfs',
      '/tmp',
      ...toolchainMounts(options.toolchain),
      '--bind',
      options.host,
      options.jobRoot,
      '--chdir',
      options.cwd,
      '--',
      ...drop,
      options.compiler,
      ...options.args,
    ],
  };
}

/**
 * Runs one confined no-op as the job's user to show that the sandbox works here: bubblewrap installed, user
 * namespaces allowed. A worker does not start without it unless told `--unsandboxed`.
 */
export function probeSandbox(user: SandboxUser | undefined, toolchain: string[]): void {
  const dir = mkdtempSync(join(tmpdir(), 'accel-probe-'));
  try {
    if (user) chownSync(dir, user.uid, user.gid);
    const { file, args } = sandboxCommand({
      compiler: '/bin/sh',
      args: ['-c', 'touch /accel-probe/ok && test -w /tmp && ! test -e /etc/passwd && test "$(id -u)" != 0'],
      host: dir,
      jobRoot: '/accel-probe',
      cwd: '/accel-probe',
      toolchain,
      limits: DEFAULT_LIMITS,
      user,
    });
    const run = spawnSync(file, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
    if (run.error || run.status !== 0 || !existsSync(join(dir, 'ok'))) {
      const why = run.error?.message || run.stderr?.toString().trim() || `exit ${run.status}`;
      throw new AccelError('ACCEL_WORKER_NO_SANDBOX', `cannot run jobs in a sandbox here: ${why}`, {
        hint: 'install bubblewrap (apt-get install bubblewrap) and allow user namespaces; or pass --unsandboxed to run jobs without one (never with untrusted clients)',
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
