import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Running the target's programs during a cross build, as conda-forge's CI does with qemu registered in
 * binfmt_misc: many builds run what they just built (giflib's regression tests, openssl's `make test`,
 * generators that run at build time). accel registers qemu-user in a binfmt_misc instance of its own, inside a
 * private user and mount namespace (Linux ≥ 6.7 gives each user namespace its own binfmt_misc), so the
 * machine's own binfmt_misc is never touched and no root is needed.
 */

/** The ELF header bytes and mask binfmt_misc matches for each target (a 64-bit little-endian executable). */
const MAGIC: Record<string, { magic: string; mask: string }> = {
  aarch64: {
    magic: '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00',
    mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff',
  },
  powerpc64le: {
    magic: '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x15\\x00',
    mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\x00',
  },
};

/**
 * The shell that mounts a private binfmt_misc, registers the rule it is given as $1 (an argument, never
 * spliced into the script, whatever the emulator's path holds) and then runs the rest of its arguments.
 */
const REGISTER = [
  'set -e',
  'mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc',
  'printf \'%b\' "$1" > /proc/sys/fs/binfmt_misc/register',
  'shift',
  'exec "$@"',
].join('\n');

/** The binfmt_misc rule for the target ('F': the kernel opens the emulator now, visible or not later). */
function rule(cpu: string, emulator: string): string {
  const m = MAGIC[cpu] as { magic: string; mask: string };
  return `:accel-${cpu}:M::${m.magic}:${m.mask}:${emulator}:F`;
}

const probed = new Map<string, string[] | null>();

/**
 * The command prefix that runs a program with the target's executables runnable, or null when this machine
 * cannot (no unshare, a kernel older than 6.7, user namespaces disabled): then a build that runs what it built
 * fails with "Exec format error", which the builder turns into an error naming the cause.
 */
export function emulationPrefix(cpu: string, emulator: string | null): string[] | null {
  if (!emulator || !MAGIC[cpu]) return null;
  const key = `${cpu} ${emulator}`;
  const cached = probed.get(key);
  if (cached !== undefined) return cached;
  const prefix = [
    'unshare',
    '--user',
    '--map-root-user',
    '--mount',
    '--',
    '/bin/sh',
    '-c',
    REGISTER,
    'accel-binfmt',
    rule(cpu, emulator),
  ];
  let ok = false;
  if (existsSync('/proc/sys/fs/binfmt_misc')) {
    const probe = spawnSync(
      prefix[0] as string,
      [...prefix.slice(1), 'test', '-e', `/proc/sys/fs/binfmt_misc/accel-${cpu}`],
      {
        stdio: 'ignore',
        timeout: 10_000,
      },
    );
    ok = probe.status === 0;
  }
  const result = ok ? prefix : null;
  probed.set(key, result);
  return result;
}
