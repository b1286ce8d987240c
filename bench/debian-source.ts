import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { readMachineSources } from '../src/mirror/apt/sources.ts';
import { has, run } from './util.ts';

/**
 * A package's Debian source, fetched with the machine's own apt sources turned into deb-src in a private apt
 * state directory (the system's lists, cache and configuration stay untouched), unpacked once into `cache`.
 * `probe` is a file under src/ (or the top) that shows the unpacked tree is complete.
 */
export function debianSource(
  pkg: string,
  cache: string,
  probe: string,
): { src: string; root: string; version: string } | { skipped: string } {
  // Lua keeps its sources under src/, most packages at the top.
  const located = () => {
    const src = existsSync(join(cache, 'src', probe)) ? join(cache, 'src') : cache;
    return { src, root: cache, version: debianVersion(cache) };
  };
  if (existsSync(join(cache, 'src', probe)) || existsSync(join(cache, probe))) return located();
  if (!has('apt-get') || !has('dpkg-source')) return { skipped: 'needs apt-get and dpkg-source (dpkg-dev)' };
  const work = mkdtempSync(join(tmpdir(), 'accel-bench-apt-'));
  try {
    const parts = join(work, 'sources');
    mkdirSync(parts);
    const written = writeDebSrc(parts);
    if (written === 0) return { skipped: 'no deb entries in the apt sources to turn into deb-src' };
    for (const d of ['lists/partial', 'cache/archives/partial', 'unpack'])
      mkdirSync(join(work, d), { recursive: true });
    const apt = [
      ...['-q', '-o', 'Dir::Etc::SourceList=/dev/null', '-o', `Dir::Etc::SourceParts=${parts}`],
      ...['-o', `Dir::State::Lists=${join(work, 'lists')}`, '-o', `Dir::Cache=${join(work, 'cache')}`],
    ];
    const unpack = join(work, 'unpack');
    const aptGet = (args: string[]) => {
      const r = spawnSync('apt-get', [...apt, ...args], { cwd: unpack, encoding: 'utf8' });
      return r.status === 0 ? null : `\`apt-get ${args.join(' ')}\` failed: ${r.stderr.trim().split('\n').pop()}`;
    };
    const updated = aptGet(['update']);
    if (updated !== null) return { skipped: updated };
    // The newest version may sit in a suite whose index lists it but whose pool lacks it (a security or updates
    // archive mirrored without its sources): then the release suite's own version, which its pool does hold.
    const attempts = [pkg, ...releaseSuites(apt).map((suite) => `${pkg}/${suite}`)];
    const failures: string[] = [];
    for (const attempt of attempts) {
      const failed = aptGet(['source', attempt]);
      if (failed === null) break;
      failures.push(failed);
    }
    if (failures.length === attempts.length) return { skipped: failures.join('; ') };
    const dir = readdirSync(unpack).find((f) => f.startsWith(`${pkg}-`) && statSync(join(unpack, f)).isDirectory());
    if (dir === undefined) return { skipped: `\`apt-get source ${pkg}\` unpacked nothing` };
    try {
      renameSync(join(unpack, dir), cache);
    } catch (err) {
      // Another run unpacked it first; its copy is as good as ours.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
    }
    return located();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The suites of the deb-src entries `apt` reads that are releases, not their -security or -updates companions. */
function releaseSuites(apt: string[]): string[] {
  const suites = run('apt-get', [...apt, 'indextargets', '--format', '$(RELEASE)', 'Created-By: Sources'], {})
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '' && !s.includes('-'));
  return [...new Set(suites)];
}

/** Copies each enabled `deb` source (one-line and deb822 files alike) into `dir` as `deb-src`; returns how many. */
function writeDebSrc(dir: string): number {
  const vars = new Map(
    run('apt-config', ['shell', 'LIST', 'Dir::Etc::SourceList/f', 'PARTS', 'Dir::Etc::SourceParts/d'], {})
      .trim()
      .split('\n')
      .map((l) => /^(\w+)='(.*)'$/.exec(l))
      .filter((m) => m !== null)
      .map((m) => [m[1], m[2]] as [string, string]),
  );
  const files: string[] = [];
  const list = vars.get('LIST');
  const partsDir = vars.get('PARTS');
  if (list && existsSync(list)) files.push(list);
  if (partsDir && existsSync(partsDir)) {
    for (const f of readdirSync(partsDir).sort()) {
      if (f.endsWith('.list') || f.endsWith('.sources')) files.push(join(partsDir, f));
    }
  }
  let count = 0;
  for (const [i, file] of files.entries()) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      const stanzas = text
        .split(/\n\s*\n/)
        .map((s) => s.split('\n').filter((l) => !l.startsWith('#')))
        .filter((lines) => lines.some((l) => /^Types:.*\bdeb\b/.test(l)))
        .filter((lines) => !lines.some((l) => /^Enabled:\s*no/i.test(l)))
        .map((lines) => lines.map((l) => (l.startsWith('Types:') ? 'Types: deb-src' : l)).join('\n'));
      if (stanzas.length > 0) writeFileSync(join(dir, `${i}-${basename(file)}`), `${stanzas.join('\n\n')}\n`);
      count += stanzas.length;
    } else {
      const lines = text
        .split('\n')
        .filter((l) => /^\s*deb\s/.test(l))
        .map((l) => l.replace(/^\s*deb\s/, 'deb-src '));
      if (lines.length > 0) writeFileSync(join(dir, `${i}-${basename(file)}`), `${lines.join('\n')}\n`);
      count += lines.length;
    }
  }
  return count;
}

export function debianVersion(dir: string): string {
  const head = readFileSync(join(dir, 'debian', 'changelog'), 'utf8').split('\n')[0] ?? '';
  const version = /\(([^)]+)\)/.exec(head)?.[1] ?? 'unknown';
  return `${version.replace(/-[^-]*$/, '')} (Debian ${version})`;
}

/** A file of the Debian archive's pool, pinned by sha256: `pool/main/m/meson` + `meson_1.12.1-2_all.deb`. */
export interface PoolFile {
  file: string;
  pool: string;
  sha256: string;
}

/**
 * A pool file in `dir` (the feedstock sources' directory), downloaded from the archive this machine's apt sources
 * name when missing or different, checked against its sha256 and renamed into place last (a concurrent reader
 * never sees half of it).
 */
export async function poolFile(f: PoolFile, dir: string): Promise<string> {
  const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
  const dest = join(dir, f.file);
  if (existsSync(dest) && sha256(readFileSync(dest)) === f.sha256) return dest;
  const archive = readMachineSources()
    .flatMap((s) => (s.types.includes('deb') ? s.uris : []))
    .find((u) => /\/debian\/?$/.test(u));
  if (!archive) throw new Error(`${f.file}: no …/debian URI in this machine’s apt sources`);
  const url = `${archive.replace(/\/+$/, '')}/${f.pool}/${f.file}`;
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const body = Buffer.from(await res.arrayBuffer());
  if (sha256(body) !== f.sha256) throw new Error(`${url}: sha256 ${sha256(body)}, want ${f.sha256}`);
  mkdirSync(dir, { recursive: true });
  const temp = `${dest}.${process.pid}.part`;
  writeFileSync(temp, body);
  renameSync(temp, dest);
  return dest;
}
