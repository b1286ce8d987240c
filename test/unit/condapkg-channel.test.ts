import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { condaIndexCommand } from '../../src/cli/conda-index.ts';
import type { DataResult } from '../../src/cli/result.ts';
import { Runner } from '../../src/cli/runner.ts';
import { addToChannel, indexChannel, type RepoData } from '../../src/conda/pkg/channel-index.ts';
import type { IndexInput } from '../../src/conda/pkg/types.ts';
import { writeCondaPackage } from '../../src/conda/pkg/write.ts';
import { fillPrefix, paddedPrefix } from '../condapkg-fixture.ts';
import { tempDir } from '../helpers.ts';

let counter = 0;
async function makePackage(root: string, index: Partial<IndexInput> & { name: string }, content = 'x\n') {
  const prefix = paddedPrefix(join(root, `b${counter++}`));
  const files = fillPrefix(prefix, [{ path: `share/${index.name}.txt`, data: content }]);
  const out = await writeCondaPackage({
    prefix,
    files,
    placeholder: prefix,
    outDir: join(root, 'out', String(counter)),
    index: {
      version: '1.0',
      build: '0',
      build_number: 0,
      subdir: 'linux-aarch64',
      timestamp: 1_700_000_000_000,
      ...index,
    },
  });
  return out.path;
}

const repodata = (channel: string, subdir: string) =>
  JSON.parse(readFileSync(join(channel, subdir, 'repodata.json'), 'utf8')) as RepoData;
const digest = (algo: string, file: string) => createHash(algo).update(readFileSync(file)).digest('hex');

test('adding packages writes repodata.json per subdir, noarch always, with checksums of the archives', async (t) => {
  const root = tempDir(t);
  const channel = join(root, 'channel');
  const libfoo = await makePackage(root, { name: 'libfoo', depends: ['__glibc >=2.17'] });
  const data = await makePackage(root, { name: 'foodata', subdir: 'noarch', noarch: 'generic' });
  await addToChannel(channel, libfoo);
  const result = await addToChannel(channel, data);
  assert.deepEqual(
    result.index.subdirs.map((s) => [s.subdir, s.packages]),
    [
      ['linux-aarch64', 1],
      ['noarch', 1],
    ],
  );
  const arm = repodata(channel, 'linux-aarch64');
  assert.equal(arm.repodata_version, 1);
  assert.deepEqual(arm.info, { subdir: 'linux-aarch64' });
  assert.deepEqual(arm.packages, {});
  const file = join(channel, 'linux-aarch64', 'libfoo-1.0-0.conda');
  assert.deepEqual(arm['packages.conda']['libfoo-1.0-0.conda'], {
    arch: 'aarch64',
    build: '0',
    build_number: 0,
    constrains: [],
    depends: ['__glibc >=2.17'],
    md5: digest('md5', file),
    name: 'libfoo',
    platform: 'linux',
    sha256: digest('sha256', file),
    size: readFileSync(file).length,
    subdir: 'linux-aarch64',
    timestamp: 1_700_000_000_000,
    version: '1.0',
  });
  assert.equal(repodata(channel, 'noarch')['packages.conda']['foodata-1.0-0.conda']?.noarch, 'generic');
  assert.deepEqual(
    readdirSync(join(channel, 'linux-aarch64')).sort(),
    ['.accel-index-cache.json', 'libfoo-1.0-0.conda', 'repodata.json'],
    'no temp files',
  );

  // An empty channel still gets noarch/repodata.json.
  const empty = join(root, 'empty');
  mkdirSync(empty);
  await indexChannel(empty);
  assert.deepEqual(repodata(empty, 'noarch')['packages.conda'], {});
});

test('the same package again is a no-op; other content under the same name is refused', async (t) => {
  const root = tempDir(t);
  const channel = join(root, 'channel');
  const first = await makePackage(root, { name: 'libfoo' }, 'one\n');
  assert.equal((await addToChannel(channel, first)).added, true);
  assert.equal((await addToChannel(channel, first)).added, false);
  const before = readFileSync(join(channel, 'linux-aarch64', 'repodata.json'));
  const other = await makePackage(root, { name: 'libfoo' }, 'two\n');
  await assert.rejects(addToChannel(channel, other), { code: 'ACCEL_CONDA_CHANNEL_CONFLICT' });
  assert.deepEqual(readFileSync(join(channel, 'linux-aarch64', 'repodata.json')), before);
  assert.equal(digest('sha256', join(channel, 'linux-aarch64', 'libfoo-1.0-0.conda')), digest('sha256', first));
});

test('a package in the wrong subdir fails the index and leaves the old repodata.json in place', async (t) => {
  const root = tempDir(t);
  const channel = join(root, 'channel');
  await addToChannel(channel, await makePackage(root, { name: 'foodata', subdir: 'noarch', noarch: 'generic' }));
  const before = readFileSync(join(channel, 'noarch', 'repodata.json'));
  copyFileSync(await makePackage(root, { name: 'libfoo' }), join(channel, 'noarch', 'libfoo-1.0-0.conda'));
  await assert.rejects(indexChannel(channel), (err: Error & { code?: string; hint?: string }) => {
    assert.equal(err.code, 'ACCEL_CONDA_CHANNEL_WRONG_SUBDIR');
    assert.match(err.hint ?? '', /linux-aarch64/);
    return true;
  });
  assert.deepEqual(readFileSync(join(channel, 'noarch', 'repodata.json')), before);
  await assert.rejects(indexChannel(join(root, 'missing')), { code: 'ACCEL_CONDA_CHANNEL_NOT_FOUND' });
  await assert.rejects(addToChannel(channel, join(root, 'missing.conda')), { code: 'ACCEL_FS_NOT_FOUND' });
});

test('concurrent adds all end up in the index', async (t) => {
  const root = tempDir(t);
  const channel = join(root, 'channel');
  const names = ['a', 'b', 'c', 'd', 'e', 'f'];
  const files = await Promise.all(names.map((name) => makePackage(root, { name })));
  await Promise.all(files.map((f) => addToChannel(channel, f)));
  assert.deepEqual(
    Object.keys(repodata(channel, 'linux-aarch64')['packages.conda']).sort(),
    names.map((n) => `${n}-1.0-0.conda`),
  );
});

test('condaIndexCommand adds packages and returns a summary for --json', async (t) => {
  const root = tempDir(t);
  const channel = join(root, 'channel');
  const pkg = await makePackage(root, { name: 'libfoo' });
  const runner = new Runner();
  const program = new Command('accel').option('--json').option('--home <dir>').option('-q, --quiet').exitOverride();
  program.addCommand(condaIndexCommand(runner));
  await program.parseAsync(['--home', root, '-q', 'index', channel, pkg], { from: 'user' });
  const result = runner.result as DataResult;
  assert.equal(result.kind, 'data');
  const data = result.data as { subdirs: { subdir: string; packages: number }[]; added: { added: boolean }[] };
  assert.deepEqual(
    data.subdirs.map((s) => [s.subdir, s.packages]),
    [
      ['linux-aarch64', 1],
      ['noarch', 0],
    ],
  );
  assert.equal(data.added[0]?.added, true);
  assert.match(result.text(), /^linux-aarch64\t1 package\t.*repodata\.json\nnoarch\t0 packages\t/);
  assert.ok(existsSync(join(channel, 'linux-aarch64', 'libfoo-1.0-0.conda')));
  await assert.rejects(program.parseAsync(['--home', root, '-q', 'index', join(root, 'nope')], { from: 'user' }), {
    code: 'ACCEL_CONDA_CHANNEL_NOT_FOUND',
  });
});

test('re-indexing reads only packages whose file changed', async (t) => {
  const root = tempDir(t);
  const channel = join(root, 'channel');
  await addToChannel(channel, await makePackage(root, { name: 'libfoo' }));
  const cacheFile = join(channel, 'linux-aarch64', '.accel-index-cache.json');
  const cache = JSON.parse(readFileSync(cacheFile, 'utf8'));
  cache['libfoo-1.0-0.conda'].record.license = 'from-the-memo';
  writeFileSync(cacheFile, JSON.stringify(cache));
  await indexChannel(channel);
  const record = () => repodata(channel, 'linux-aarch64')['packages.conda']['libfoo-1.0-0.conda'];
  assert.equal(record()?.license, 'from-the-memo', 'an unchanged file is not read again');
  const pkg = join(channel, 'linux-aarch64', 'libfoo-1.0-0.conda');
  utimesSync(pkg, new Date(), new Date(Date.now() + 5000));
  await indexChannel(channel);
  assert.equal(record()?.license, undefined, 'a changed stamp means the package is read again');
  writeFileSync(cacheFile, 'not json');
  await indexChannel(channel);
  assert.equal(record()?.name, 'libfoo', 'a damaged memo is ignored');
});

test('a package whose index names a subdir like ../x is refused: nothing is written outside the channel', async (t) => {
  const root = tempDir(t);
  const { packTarZst } = await import('../../src/conda/pkg/tar-zst.ts');
  const { writeStoredZip } = await import('../../src/conda/pkg/zip.ts');
  const stem = 'x-1-0';
  const index = { name: 'x', version: '1', build: '0', build_number: 0, subdir: '../escaped', depends: [] };
  const file = (name: string, text: string) => ({ name, type: 'file' as const, mode: 0o644, data: Buffer.from(text) });
  const info = await packTarZst(
    [
      file('info/index.json', JSON.stringify(index)),
      file('info/paths.json', JSON.stringify({ paths: [], paths_version: 1 })),
      file('info/files', ''),
    ],
    0,
  );
  const crafted = join(root, `${stem}.conda`);
  writeFileSync(
    crafted,
    writeStoredZip(
      [
        { name: 'metadata.json', data: Buffer.from('{"conda_pkg_format_version":2}') },
        { name: `pkg-${stem}.tar.zst`, data: await packTarZst([], 0) },
        { name: `info-${stem}.tar.zst`, data: info },
      ],
      0,
    ),
  );
  const channel = join(root, 'channel');
  mkdirSync(channel);
  await assert.rejects(addToChannel(channel, crafted), /not a subdir name/);
  assert.equal(existsSync(join(root, 'escaped')), false);
});
