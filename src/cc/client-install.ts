import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync, realpathSync, renameSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { getAsset, isSea } from 'node:sea';
import { replaceFileSync, tempName } from '../core/atomic-fs.ts';
import { makeDirs } from '../core/dirs.ts';
import { AccelError, errnoCode } from '../core/errors.ts';
import { homeLayout } from '../core/home-layout.ts';
import { masqueradePath } from './masquerade.ts';

/** `$ACCEL_HOME/bin`: the native client and the `accel` it falls back to and starts the daemon with. */
function clientPaths(home: string) {
  const { dir, client, accel } = homeLayout(home).bin;
  return { bin: dir, client, accel };
}

/**
 * Installs the native client (native/accel-cc.c) as `$ACCEL_HOME/bin/accel-cc`, and beside it `accel`, the
 * command it runs to start the daemon or to compile without one. In the executable the client is an
 * embedded asset; from source it is build/out/accel-cc-linux-<arch> (`npm run build:client`). Rewritten only
 * when its bytes differ, through a temp file and a rename, so running builds never see half a binary.
 */
export function installClient(home: string): { client: string; accel: string } {
  const paths = clientPaths(home);
  const binary = clientBinary();
  makeDirs(paths.bin);
  replaceIfChanged(paths.client, binary, 0o755);
  if (isSea()) {
    const target = process.execPath;
    let current: string | undefined;
    try {
      current = resolve(paths.bin, readlinkSync(paths.accel));
    } catch {
      current = undefined; // missing, or not a link: replace it
    }
    if (current !== target) {
      const temp = join(paths.bin, tempName('.accel.'));
      symlinkSync(target, temp);
      renameSync(temp, paths.accel);
    }
  } else {
    const script = `#!/bin/sh\nexec "${process.execPath}" "${process.argv[1]}" "$@"\n`;
    replaceIfChanged(paths.accel, Buffer.from(script), 0o755);
  }
  return paths;
}

/**
 * What the wrapper must never run as "the compiler" when it searches PATH: the masquerade links, the
 * executable itself and its native client.
 */
export function accelItself(home: string): { dirs: string[]; self: string[] } {
  const self = isSea() ? [realpathSync(process.execPath)] : [];
  const { client } = clientPaths(home);
  if (existsSync(client)) self.push(realpathSync(client));
  return { dirs: [masqueradePath(home)], self };
}

function clientBinary(): Buffer {
  if (isSea()) return Buffer.from(getAsset('accel-cc'));
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  const file = resolve(import.meta.dirname, '..', '..', 'build', 'out', `accel-cc-linux-${arch}`);
  try {
    return readFileSync(file);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    throw new AccelError('ACCEL_CC_CLIENT_MISSING', `the native cc client ${file} has not been built`, {
      hint: 'npm run build:client (the executable embeds it; from source it is built separately)',
    });
  }
}

function replaceIfChanged(path: string, data: Buffer, mode: number): void {
  try {
    if (digest(readFileSync(path)) === digest(data)) return;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  // Running builds exec it: the old file stays until the new one replaces it.
  replaceFileSync(path, data, { mode, unlinkFirst: false });
}

function digest(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
