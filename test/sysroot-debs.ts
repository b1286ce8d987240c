// The pinned sysroot's .debs for the tests, which never leave loopback: `.ci/run` downloads them once with
// `node test/sysroot-debs.ts DIR` (from this machine's Debian archive, checked by sha256) into the archive's
// own layout (DIR/pool/…), and the tests serve DIR from a loopback upstream.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { PINNED_SYSROOTS } from '../src/conda/builder/sysroot.ts';
import { readMachineSources } from '../src/mirror/apt/sources.ts';
import { startFakeUpstream } from './fake-upstream.ts';

/** Where .ci/run puts them: a fixed path, which the docs' examples (run with a TMPDIR of their own) find too. */
export const SYSROOT_DEBS = process.env.SYSROOT_DEBS ?? '/tmp/accel-sysroot-debs';
const DEBS = PINNED_SYSROOTS.flatMap((s) => s.debs);

/** The pinned .debs not (or not correctly) in SYSROOT_DEBS. */
export function missingDebs(dir = SYSROOT_DEBS): string[] {
  return DEBS.filter((d) => {
    const file = join(dir, d.path);
    return !existsSync(file) || createHash('sha256').update(readFileSync(file)).digest('hex') !== d.sha256;
  }).map((d) => d.name);
}

/** A loopback stand-in for the Debian archive: serves the pinned .debs from SYSROOT_DEBS, counts requests. */
export async function serveDebs(t: TestContext) {
  const upstream = await startFakeUpstream();
  for (const d of DEBS) {
    const body = readFileSync(join(SYSROOT_DEBS, d.path));
    upstream.files.set(`/debian/${d.path}`, { body, contentType: 'application/vnd.debian.binary-package' });
  }
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await upstream.close();
  };
  t.after(stop);
  const host = upstream.origin;
  return {
    archive: `http://${host}/debian`,
    host,
    /** The paths asked for, in order. */
    get requests() {
      return upstream.requests.map((r) => r.path);
    },
    stop,
  };
}

/** Downloads what is missing from this machine's Debian archive (the first `…/debian` URI of its apt sources). */
async function download(dir: string): Promise<void> {
  const archive = readMachineSources()
    .flatMap((s) => (s.types.includes('deb') ? s.uris : []))
    .find((u) => /\/debian\/?$/.test(u));
  if (!archive) throw new Error('no …/debian URI in this machine’s apt sources');
  for (const deb of DEBS) {
    if (!missingDebs(dir).includes(deb.name)) continue;
    const url = `${archive.replace(/\/+$/, '')}/${deb.path}`;
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    const body = Buffer.from(await res.arrayBuffer());
    const sha = createHash('sha256').update(body).digest('hex');
    if (sha !== deb.sha256) throw new Error(`${url}: sha256 ${sha}, pinned ${deb.sha256}`);
    mkdirSync(dirname(join(dir, deb.path)), { recursive: true });
    writeFileSync(join(dir, deb.path), body);
    console.log(`${deb.name}_${deb.version}: ${body.length} bytes, sha256 ok`);
  }
}

if (import.meta.main) await download(process.argv[2] ?? SYSROOT_DEBS);
