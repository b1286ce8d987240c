// The native client of `accel cc daemon` (native/accel-cc.c): built by `npm run build` for each target and
// embedded in the executable; `node build/client.ts [--arch x64|arm64]` builds just it (tests from source use
// build/out/accel-cc-linux-<arch>).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');

/** Debian's cross gcc for arm64 (gcc-aarch64-linux-gnu + libc6-dev-arm64-cross for the static libc). */
const CC = { x64: 'gcc', arm64: 'aarch64-linux-gnu-gcc' } as const;

/**
 * Compiles the client statically: no dynamic loader to run (it starts in about a millisecond) and no glibc
 * version to match on the machine it lands on. Returns the path of build/out/accel-cc-linux-<arch>, and
 * copies it to `assetDir` when given (the executable embeds it from there).
 */
export function buildClient(arch: 'x64' | 'arm64', assetDir?: string): string {
  const out = join(ROOT, 'build', 'out', `accel-cc-linux-${arch}`);
  mkdirSync(join(ROOT, 'build', 'out'), { recursive: true });
  const args = [
    '-std=c11',
    '-O2',
    '-static',
    '-s',
    '-Wall',
    '-Wextra',
    '-Werror',
    '-o',
    out,
    join(ROOT, 'native', 'accel-cc.c'),
  ];
  const r = spawnSync(CC[arch], args, { encoding: 'utf8' });
  if (r.error)
    throw new Error(
      `${CC[arch]}: ${r.error.message} (install ${arch === 'x64' ? 'gcc libc6-dev' : 'gcc-aarch64-linux-gnu libc6-dev-arm64-cross'})`,
    );
  if (r.status !== 0) throw new Error(`${CC[arch]} ${args.join(' ')} failed:\n${r.stderr}`);
  if (assetDir) copyFileSync(out, join(assetDir, 'accel-cc'));
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { arch: { type: 'string', default: 'x64' } } });
  const arch = values.arch === 'arm64' ? 'arm64' : 'x64';
  console.log(buildClient(arch));
}
