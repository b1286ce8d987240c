import { spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { AccelError } from '../../core/errors.ts';
import type { Digest } from '../../store/digest.ts';

/** `Filename` → `SHA256` from a Packages index: what each pool file must hash to. */
export function parsePackages(text: string): Map<string, Digest> {
  const result = new Map<string, Digest>();
  for (const stanza of text.split(/\n\s*\n/)) {
    const filename = /^Filename:\s*(\S+)/m.exec(stanza)?.[1];
    const sha256 = /^SHA256:\s*([0-9a-f]{64})/m.exec(stanza)?.[1];
    if (filename && sha256) result.set(filename, sha256 as Digest);
  }
  return result;
}

/**
 * Decompresses an index by its name. gzip is in node:zlib; xz (what Debian publishes) goes through the
 * system's `xz`, which every Debian-family system has (dpkg depends on it).
 */
export function decompressIndex(path: string, data: Buffer): string | undefined {
  if (path.endsWith('.gz')) return gunzipSync(data).toString('utf8');
  if (path.endsWith('.xz')) {
    const r = spawnSync('xz', ['-dc'], { input: data, maxBuffer: 1 << 30 });
    if (r.error || r.status !== 0) {
      throw new AccelError('ACCEL_APT_XZ', `cannot decompress ${path} with xz: ${r.error?.message ?? r.stderr}`, {
        hint: 'install xz-utils',
      });
    }
    return r.stdout.toString('utf8');
  }
  if (/\.(bz2|lz4|zst|lzma)$/.test(path)) return undefined;
  return data.toString('utf8');
}

/** Index files that list packages, in the order to prefer them (cheapest to read first). */
export function isPackagesIndex(path: string): boolean {
  return /(^|\/)Packages(\.gz|\.xz)?$/.test(path);
}
