/**
 * The real conda-forge feedstocks of ../shared/feedstocks, as the CI subset test and `npm run check:feedstocks`
 * build them: sources from Debian's orig tarballs (get-sources, run before the tests: no test leaves
 * loopback), and checks that do not trust accel's own code — the packages unpacked by unzip, zstd and tar,
 * their ELF headers read by readelf, and the channel solved by rattler over HTTP.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { simpleSolve } from '@conda-org/rattler';

const HERE = import.meta.dirname;
export const SHARED_FEEDSTOCKS = process.env.FEEDSTOCKS_DIR ?? resolve(HERE, '..', '..', 'shared', 'feedstocks');
/** Where get-sources put the orig tarballs (.ci/run fills it before the tests). */
export const FEEDSTOCK_SOURCES = process.env.FEEDSTOCK_SOURCES ?? join(tmpdir(), 'accel-feedstock-sources');

export interface SourceRow {
  feedstock: string;
  file: string;
  relation: 'identical' | 'repack';
}

export function sourceRows(): SourceRow[] {
  const lines = readFileSync(join(SHARED_FEEDSTOCKS, 'SOURCES.tsv'), 'utf8').trim().split('\n').slice(1);
  return lines.map((l) => {
    const [feedstock, , , file, , relation] = l.split('\t');
    return { feedstock, file, relation } as SourceRow;
  });
}

/** The feedstocks with a recipe (conda-build's meta.yaml or rattler-build's recipe.yaml), by name. */
export function sharedFeedstocks(): string[] {
  return readdirSync(SHARED_FEEDSTOCKS)
    .filter((d) => d.endsWith('-feedstock') && recipeFile(join(SHARED_FEEDSTOCKS, d)) !== undefined)
    .map((d) => d.replace(/-feedstock$/, ''))
    .sort();
}

/** A feedstock's recipe file: recipe/meta.yaml, or recipe/recipe.yaml (v1). */
export function recipeFile(feedstock: string): string | undefined {
  return ['meta.yaml', 'recipe.yaml'].map((f) => join(feedstock, 'recipe', f)).find((f) => existsSync(f));
}

/** The orig tarballs of `names` that are not in FEEDSTOCK_SOURCES yet. */
export function missingSources(names: string[]): string[] {
  const rows = sourceRows().filter((r) => names.includes(r.feedstock));
  return rows.filter((r) => !existsSync(join(FEEDSTOCK_SOURCES, r.file))).map((r) => r.feedstock);
}

/** Runs get-sources for what is missing (it reaches this machine's Debian archive: not for tests). */
export function fetchSources(names: string[]): void {
  const missing = missingSources(names);
  if (missing.length === 0) return;
  const r = spawnSync('python3', [join(SHARED_FEEDSTOCKS, 'get-sources'), FEEDSTOCK_SOURCES, ...missing], {
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new Error(`get-sources failed for ${missing.join(', ')}`);
}

/** `--source NAME=FILE` for each feedstock: its orig tarball (byte-identical or Debian's repack). */
export function sourceFlags(names: string[]): string[] {
  return sourceRows()
    .filter((r) => names.includes(r.feedstock))
    .flatMap((r) => ['--source', `${r.feedstock}=${join(FEEDSTOCK_SOURCES, r.file)}`]);
}

/** `accel conda build` of a set of them for linux-aarch64, from their orig tarballs, as JSON. */
export function buildArgs(home: string, channel: string, set: string, names: string[], jobs = '2'): string[] {
  const target = ['--target-platform', 'linux-aarch64', '--channel', channel, '--jobs', jobs];
  return ['--home', home, '--json', 'conda', 'build', '--all', set, ...target, ...sourceFlags(names)];
}

/** A directory of symlinks to the named feedstocks (how a port's working set is put together). */
export function linkFeedstocks(dir: string, names: string[]): string {
  mkdirSync(dir, { recursive: true });
  for (const n of names) symlinkSync(join(SHARED_FEEDSTOCKS, `${n}-feedstock`), join(dir, `${n}-feedstock`));
  return dir;
}

/**
 * Adds `by` to the build number of each named feedstock's recipe under `dir` (a copy: never the shared set):
 * `number: N`, meta.yaml's `{% set build_number = N %}`, or a v1 recipe's `context:` entry that build/number uses.
 */
export function bumpBuildNumbers(dir: string, names: string[], by: number): void {
  for (const name of names) {
    const file = recipeFile(join(dir, `${name}-feedstock`));
    if (!file) throw new Error(`no recipe in ${dir}/${name}-feedstock`);
    const original = readFileSync(file, 'utf8');
    let text = original
      .replace(/^(\s+number:\s*)(\d+)\s*$/m, (_, k, n) => `${k}${Number(n) + by}`)
      .replace(/^({% set build_num(?:ber)? = )(\d+)( %})/m, (_, a, n, b) => `${a}${Number(n) + by}${b}`);
    if (text === original) {
      // `number: ${{ build }}` with the number under context:.
      text = original.replace(
        /^(\s+(?:build|build_num|build_number):\s*)(\d+)\s*$/m,
        (_, k, n) => `${k}${Number(n) + by}`,
      );
    }
    if (text === original) throw new Error(`${file}: no build number found to bump`);
    writeFileSync(file, text);
  }
}

/** sha256 of every file a .conda installs (its pkg- part), read by unzip, zstd and tar: contents without info/. */
export function payloadDigests(pkg: string, work: string): Map<string, string> {
  const dir = join(work, `p-${pkg.split('/').pop()}`);
  mkdirSync(dir, { recursive: true });
  const r = spawnSync(
    'bash',
    [
      '-c',
      `cd '${dir}' && unzip -q -o '${pkg}' 'pkg-*' && for t in pkg-*.tar.zst; do zstd -dc "$t" | tar -x; done && rm -f pkg-*.tar.zst && find . -type f -print0 | sort -z | xargs -0r sha256sum`,
    ],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  if (r.status !== 0) throw new Error(`unpacking ${pkg}: ${r.stderr}`);
  return new Map(
    r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(66), l.slice(0, 64)] as [string, string]),
  );
}

/**
 * The ELF machine of every ELF member of a .conda, and the highest GLIBC_ version it needs, read by unzip, zstd,
 * tar and readelf (not by accel).
 */
export function elfMachines(pkg: string, work: string): { file: string; machine: string; glibc: string | null }[] {
  const dir = join(work, `x-${pkg.split('/').pop()}`);
  mkdirSync(dir, { recursive: true });
  const sh = (script: string) => {
    const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`${script}: ${r.stderr}`);
    return r.stdout;
  };
  sh(`cd '${dir}' && unzip -q -o '${pkg}' && for t in pkg-*.tar.zst; do zstd -dc "$t" | tar -x; done`);
  const out: { file: string; machine: string; glibc: string | null }[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && statSync(p).size >= 20) {
        const head = readFileSync(p).subarray(0, 4);
        if (head.toString('latin1') !== '\x7fELF') continue;
        const m = /Machine:\s+(.+)/.exec(sh(`readelf -h '${p}'`));
        const needs = [...sh(`readelf -V -W '${p}'`).matchAll(/Name: GLIBC_(\d+(?:\.\d+)+)/g)].map(
          (v) => v[1] as string,
        );
        const glibc = needs.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1) ?? null;
        out.push({ file: p.slice(dir.length + 1), machine: (m?.[1] ?? '?').trim(), glibc });
      }
    }
  };
  walk(dir);
  return out.filter((e) => !e.file.startsWith('info/'));
}

/**
 * Serves the channel and a stand-in for the target machine's virtual packages (`__glibc` at the sysroot's
 * version: rattler's simpleSolve takes no virtual packages) over HTTP on 127.0.0.1, and solves each spec.
 */
export async function solveWithRattler(
  channel: string,
  specs: string[],
  glibc: string,
): Promise<Map<string, { ok: true; packages: string[] } | { ok: false; error: string }>> {
  const virtual = writeTargetSystem(join(channel, '..', 'target-system'), glibc);
  for (const subdir of ['linux-aarch64', 'noarch']) {
    mkdirSync(join(channel, subdir), { recursive: true });
    if (!existsSync(join(channel, subdir, 'repodata.json'))) {
      writeFileSync(
        join(channel, subdir, 'repodata.json'),
        JSON.stringify({ info: { subdir }, packages: {}, 'packages.conda': {}, repodata_version: 1 }),
      );
    }
  }
  const roots: Record<string, string> = { local: channel, target: virtual };
  const server: Server = createServer((req, res) => {
    const [, name, ...rest] = (req.url ?? '').split('?')[0]?.split('/') ?? [];
    const root = roots[name ?? ''];
    const file = root ? join(root, ...rest) : '';
    if (!root || rest.includes('..') || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200).end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const out = new Map<string, { ok: true; packages: string[] } | { ok: false; error: string }>();
  try {
    for (const spec of specs) {
      try {
        const solved = await simpleSolve([spec], [`${base}/local`, `${base}/target`], ['linux-aarch64', 'noarch'], []);
        out.set(spec, { ok: true, packages: solved.map((p) => `${p.packageName}=${p.version}=${p.build}`).sort() });
      } catch (err) {
        out.set(spec, { ok: false, error: String(err).split('\n').slice(0, 4).join(' ') });
      }
    }
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
  return out;
}

/**
 * A channel standing in for the target machine's virtual packages: `__glibc` at the given version, as conda
 * would detect it on an aarch64 machine (rattler's simpleSolve takes no virtual packages of its own).
 */
export function writeTargetSystem(dir: string, glibc: string): string {
  for (const subdir of ['linux-aarch64', 'noarch']) {
    mkdirSync(join(dir, subdir), { recursive: true });
    const record = {
      name: '__glibc',
      version: glibc,
      build: '0',
      build_number: 0,
      depends: [],
      subdir,
      md5: '0'.repeat(32),
      sha256: '0'.repeat(64),
      size: 0,
    };
    const pkgs = subdir === 'noarch' ? {} : { [`__glibc-${glibc}-0.conda`]: record };
    writeFileSync(
      join(dir, subdir, 'repodata.json'),
      JSON.stringify({ info: { subdir }, packages: {}, 'packages.conda': pkgs, repodata_version: 1 }),
    );
  }
  return dir;
}

/** The glibc version of the cross sysroot (what an aarch64 Debian of the same release runs). */
export function sysrootGlibc(): string {
  const lib = '/usr/aarch64-linux-gnu/lib';
  const libc = readdirSync(lib).find((f) => /^libc\.so\.6$/.test(f));
  if (!libc) return '2.17';
  const r = spawnSync(
    'bash',
    ['-c', `strings '${join(lib, libc)}' | grep -oE '^GLIBC_2\\.[0-9]+$' | sort -V | tail -1`],
    {
      encoding: 'utf8',
    },
  );
  return r.stdout.trim().replace(/^GLIBC_/, '') || '2.17';
}
