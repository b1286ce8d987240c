import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { tempName } from '../core/atomic-fs.ts';
import { makeDirs } from '../core/dirs.ts';
import { errnoCode } from '../core/errors.ts';
import { homeLayout } from '../core/home-layout.ts';

/**
 * The token that writes to the mirror's shared build cache (`PUT /cache/ac`, `/cache/cas`) need. Reads of the
 * cache stay open (on loopback by default); a write feeds compile results to every machine that reads it, so
 * "any local user can feed other machines' compile results" is not the default. Made at first use, kept in
 * `$ACCEL_HOME/mirror-cache.token` (0600); `accel mirror config cache` prints the lines that use it.
 */
export function cacheTokenPath(home: string): string {
  return homeLayout(home).mirrorCacheToken;
}

export function cacheToken(home: string): string {
  const path = cacheTokenPath(home);
  try {
    const token = readFileSync(path, 'utf8').trim();
    if (token) return token;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  makeDirs(home, { mode: 0o700 });
  // Written aside, then linked into place: two first starts at once agree on one token (link fails EEXIST
  // for the second, which reads the first's), and nobody ever reads a half-written file.
  const temp = join(dirname(path), tempName(`.${basename(path)}.`));
  writeFileSync(temp, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temp, path);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
  } finally {
    rmSync(temp, { force: true });
  }
  return readFileSync(path, 'utf8').trim();
}
