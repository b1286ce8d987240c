import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkCondaPackage, readCondaPackage } from '../../src/conda/pkg/read.ts';
import { packTarZst } from '../../src/conda/pkg/tar-zst.ts';
import { stableJson } from '../../src/conda/pkg/types.ts';
import { writeCondaPackage } from '../../src/conda/pkg/write.ts';
import { readStoredZip, writeStoredZip } from '../../src/conda/pkg/zip.ts';
import { binaryWithPrefix, fillPrefix, paddedPrefix } from '../condapkg-fixture.ts';
import { needsTools, sha256, tempDir } from '../helpers.ts';

const TIMESTAMP = Date.UTC(2026, 10, 1, 12, 0, 0);

function fixture(root: string) {
  const prefix = paddedPrefix(root);
  const files = fillPrefix(prefix, [
    { path: 'bin/foo', data: `#!/bin/sh\nexec ${prefix}/libexec/foo "$@"\n`, executable: true },
    { path: 'lib/libfoo.so.1', data: binaryWithPrefix(prefix), executable: true },
    { path: 'lib/libfoo.so', link: 'libfoo.so.1' },
    { path: 'share/doc/foo/README', data: 'no prefix here\n' },
  ]);
  const recipe = join(root, 'recipe');
  fillPrefix(recipe, [{ path: 'meta.yaml', data: 'package: {name: foo}\n' }]);
  return { prefix, files, recipe };
}

async function build(root: string, outDir: string) {
  const { prefix, files, recipe } = fixture(root);
  return writeCondaPackage({
    prefix,
    files,
    placeholder: prefix,
    outDir,
    recipeDir: recipe,
    index: {
      name: 'foo',
      version: '1.2.3',
      build: 'h1234_0',
      build_number: 0,
      depends: ['libc >=2'],
      subdir: 'linux-aarch64',
      timestamp: TIMESTAMP,
      license: 'MIT',
    },
    about: { summary: 'a test package', license: 'MIT' },
    runExports: { weak: ['foo >=1.2.3,<2'] },
  });
}

test('writes a .conda whose paths.json marks text and binary placeholders and softlinks', async (t) => {
  const root = tempDir(t);
  const out = await build(root, join(root, 'out'));
  assert.equal(out.filename, 'foo-1.2.3-h1234_0.conda');
  assert.equal(out.sha256, sha256(readFileSync(out.path)));
  const pkg = await readCondaPackage(out.path);
  const byPath = Object.fromEntries(pkg.paths.paths.map((p) => [p._path, p]));
  const prefix = paddedPrefix(root);
  assert.deepEqual(byPath['bin/foo'], {
    _path: 'bin/foo',
    path_type: 'hardlink',
    sha256: sha256(readFileSync(join(prefix, 'bin/foo'))),
    size_in_bytes: readFileSync(join(prefix, 'bin/foo')).length,
    prefix_placeholder: prefix,
    file_mode: 'text',
  });
  assert.equal(byPath['lib/libfoo.so.1']?.file_mode, 'binary');
  assert.deepEqual(byPath['lib/libfoo.so'], { _path: 'lib/libfoo.so', path_type: 'softlink' });
  assert.equal(byPath['share/doc/foo/README']?.prefix_placeholder, undefined);
  assert.deepEqual(pkg.index, {
    arch: 'aarch64',
    build: 'h1234_0',
    build_number: 0,
    constrains: [],
    depends: ['libc >=2'],
    license: 'MIT',
    name: 'foo',
    platform: 'linux',
    subdir: 'linux-aarch64',
    timestamp: TIMESTAMP,
    version: '1.2.3',
  });
  const info = Object.fromEntries(pkg.info.map((m) => [m.name, m.data.toString()]));
  assert.equal(info['info/files'], 'bin/foo\nlib/libfoo.so\nlib/libfoo.so.1\nshare/doc/foo/README\n');
  assert.deepEqual(JSON.parse(info['info/run_exports.json'] ?? ''), { weak: ['foo >=1.2.3,<2'] });
  assert.deepEqual(JSON.parse(info['info/about.json'] ?? ''), { summary: 'a test package', license: 'MIT' });
  assert.equal(info['info/recipe/meta.yaml'], 'package: {name: foo}\n');
  assert.match(info['info/has_prefix'] ?? '', /^.+ text bin\/foo\n.+ binary lib\/libfoo.so.1\n$/);
  const exe = pkg.pkg.find((m) => m.name === 'bin/foo');
  assert.equal(exe?.mode, 0o755);
  assert.equal(pkg.pkg.find((m) => m.name === 'lib/libfoo.so')?.linkname, 'libfoo.so.1');
  const check = await checkCondaPackage(out.path);
  assert.equal(check.files, 4);
});

test('the same inputs give the same bytes, even after the files are written again', async (t) => {
  const root = tempDir(t);
  const first = await build(root, join(root, 'one'));
  // Rewritten files have new mtimes and inodes; the mode of a non-executable file differs too.
  const prefix = paddedPrefix(root);
  const readme = join(prefix, 'share/doc/foo/README');
  writeFileSync(readme, readFileSync(readme));
  chmodSync(readme, 0o600);
  // A later mtime, set rather than waited for.
  const later = new Date(Date.now() + 5000);
  utimesSync(readme, later, later);
  const second = await build(root, join(root, 'two'));
  assert.equal(first.sha256, second.sha256);
  assert.deepEqual(readFileSync(first.path), readFileSync(second.path));
});

test('an independent reader (unzip, zstd, tar) opens the package', needsTools('unzip', 'zstd', 'tar'), async (t) => {
  const root = tempDir(t);
  const out = await build(root, join(root, 'out'));
  const list = spawnSync('unzip', ['-Z1', out.path], { encoding: 'utf8' });
  assert.equal(list.status, 0, list.stderr);
  assert.deepEqual(list.stdout.trim().split('\n'), [
    'metadata.json',
    'pkg-foo-1.2.3-h1234_0.tar.zst',
    'info-foo-1.2.3-h1234_0.tar.zst',
  ]);
  const test = spawnSync('unzip', ['-tq', out.path], { encoding: 'utf8' });
  assert.equal(test.status, 0, test.stdout + test.stderr);
  const dir = join(root, 'x');
  const sh = `mkdir -p ${dir} && cd ${dir} && unzip -q ${out.path} && zstd -dcq info-*.tar.zst | tar -x && zstd -dcq pkg-*.tar.zst | tar -x`;
  const r = spawnSync('sh', ['-c', sh], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const index = JSON.parse(readFileSync(join(dir, 'info/index.json'), 'utf8'));
  assert.equal(index.name, 'foo');
  assert.deepEqual(readFileSync(join(dir, 'lib/libfoo.so.1')), binaryWithPrefix(paddedPrefix(root)));
  assert.equal(readFileSync(join(dir, 'metadata.json'), 'utf8'), '{"conda_pkg_format_version":2}');
});

test('bad index fields and unsafe paths are refused before anything is written', async (t) => {
  const root = tempDir(t);
  const { prefix, files } = fixture(root);
  const outDir = join(root, 'out');
  const base = {
    name: 'foo',
    version: '1',
    build: '0',
    build_number: 0,
    subdir: 'linux-aarch64',
    timestamp: TIMESTAMP,
  };
  const write = (over: object, list = files) =>
    writeCondaPackage({ prefix, files: list, placeholder: prefix, outDir, index: { ...base, ...over } });
  await assert.rejects(write({ name: 'Foo Bar' }), { code: 'ACCEL_CONDA_PACKAGE_BAD_INDEX' });
  await assert.rejects(write({ version: '1-2' }), { code: 'ACCEL_CONDA_PACKAGE_BAD_INDEX' });
  await assert.rejects(write({ noarch: 'generic' }), { code: 'ACCEL_CONDA_PACKAGE_BAD_INDEX' });
  await assert.rejects(write({}, ['../etc/passwd']), { code: 'ACCEL_CONDA_PACKAGE_UNSAFE_PATH' });
  await assert.rejects(write({}, ['info/index.json']), { code: 'ACCEL_CONDA_PACKAGE_UNSAFE_PATH' });
  await assert.rejects(write({}, ['conda-meta/history']), { code: 'ACCEL_CONDA_PACKAGE_UNSAFE_PATH' });
  await assert.rejects(write({}, ['bin/missing']), { code: 'ACCEL_CONDA_PACKAGE_MISSING_FILE' });
  await assert.rejects(write({}, ['bin']), { code: 'ACCEL_CONDA_PACKAGE_UNSUPPORTED_FILE' });
  assert.equal(existsSync(outDir), false, 'nothing written');
});

/** Rebuilds a written package with one part changed, to feed the checker malformed input. */
async function tampered(
  file: string,
  change: { paths?: (p: unknown) => unknown; members?: (names: string[]) => string[]; metadata?: string },
) {
  const members = readStoredZip(readFileSync(file), file);
  const pkg = await readCondaPackage(file);
  const info = pkg.info.map((m) =>
    m.name === 'info/paths.json' && change.paths
      ? { ...m, data: Buffer.from(stableJson(change.paths(JSON.parse(m.data.toString())))) }
      : m,
  );
  const infoTar = await packTarZst(info, TIMESTAMP);
  let out = members.map((m) =>
    m.name.startsWith('info-')
      ? { ...m, data: infoTar }
      : m.name === 'metadata.json' && change.metadata
        ? { ...m, data: Buffer.from(change.metadata) }
        : m,
  );
  if (change.members) {
    const keep = change.members(out.map((m) => m.name));
    out = keep.map((n) => out.find((m) => m.name === n) ?? { name: n, data: Buffer.from('x') });
  }
  writeFileSync(file, writeStoredZip(out, TIMESTAMP));
}

test('the format check names what is wrong', async (t) => {
  const root = tempDir(t);
  const fresh = async () => (await build(root, join(root, `o${Math.random()}`))).path;
  type Paths = { paths: { _path: string; sha256?: string; size_in_bytes?: number }[] };
  const cases: [string, Parameters<typeof tampered>[1]][] = [
    [
      'ACCEL_CONDA_PACKAGE_PATHS',
      {
        paths: (p) => ({
          ...(p as Paths),
          paths: (p as Paths).paths.map((e) => ({ ...e, sha256: e.sha256 && '0'.repeat(64) })),
        }),
      },
    ],
    [
      'ACCEL_CONDA_PACKAGE_PATHS',
      {
        paths: (p) => ({
          ...(p as Paths),
          paths: (p as Paths).paths.map((e) => ({ ...e, size_in_bytes: e.size_in_bytes && 1 })),
        }),
      },
    ],
    ['ACCEL_CONDA_PACKAGE_PATHS', { paths: (p) => ({ ...(p as Paths), paths: (p as Paths).paths.slice(1) }) }],
    ['ACCEL_CONDA_PACKAGE_MEMBERS', { members: (names) => names.slice(1) }],
    ['ACCEL_CONDA_PACKAGE_MEMBERS', { members: (names) => [...names, 'extra.txt'] }],
    ['ACCEL_CONDA_PACKAGE_METADATA', { metadata: '{"conda_pkg_format_version": 1}' }],
    ['ACCEL_CONDA_PACKAGE_METADATA', { metadata: 'not json' }],
  ];
  for (const [code, change] of cases) {
    const file = await fresh();
    await checkCondaPackage(file);
    await tampered(file, change);
    await assert.rejects(checkCondaPackage(file), (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, code, err.message);
      assert.ok(err.hint);
      return true;
    });
  }
  const truncated = await fresh();
  writeFileSync(truncated, readFileSync(truncated).subarray(0, 300));
  await assert.rejects(checkCondaPackage(truncated), { code: 'ACCEL_CONDA_PACKAGE_NOT_ZIP' });
  const flipped = await fresh();
  const bytes = readFileSync(flipped);
  bytes[200] = (bytes[200] ?? 0) ^ 0xff;
  writeFileSync(flipped, bytes);
  await assert.rejects(checkCondaPackage(flipped), { code: 'ACCEL_CONDA_PACKAGE_NOT_ZIP' });
});

test('an absolute symlink into the build prefix is stored relative; files below a symlink are refused', async (t) => {
  const root = tempDir(t);
  const prefix = paddedPrefix(root);
  const files = fillPrefix(prefix, [
    { path: 'lib/libz.so.1', data: 'z' },
    { path: 'bin/z-link', link: join(prefix, 'lib/libz.so.1') },
    { path: 'etc-link', link: '/etc' },
  ]);
  const index = { name: 'z', version: '1', build: '0', build_number: 0, subdir: 'linux-aarch64', timestamp: 0 };
  const out = await writeCondaPackage({ prefix, files, placeholder: prefix, outDir: join(root, 'out'), index });
  const pkg = await readCondaPackage(out.path);
  assert.equal(pkg.pkg.find((m) => m.name === 'bin/z-link')?.linkname, '../lib/libz.so.1');
  assert.equal(pkg.pkg.find((m) => m.name === 'etc-link')?.linkname, '/etc', 'links outside the prefix stay');

  // A crafted package with a file through its own symlink (etc-link/passwd) must not pass the check.
  const evil = await readCondaPackage(out.path);
  const members = readStoredZip(readFileSync(out.path), out.path);
  const pkgTar = await packTarZst(
    [...evil.pkg, { name: 'etc-link/passwd', type: 'file', mode: 0o644, data: Buffer.from('x') }],
    0,
  );
  const paths = {
    ...evil.paths,
    paths: [
      ...evil.paths.paths,
      { _path: 'etc-link/passwd', path_type: 'hardlink', sha256: sha256('x'), size_in_bytes: 1 },
    ],
  };
  const info = evil.info.map((m) =>
    m.name === 'info/paths.json'
      ? { ...m, data: Buffer.from(stableJson(paths)) }
      : m.name === 'info/files'
        ? { ...m, data: Buffer.from(`${m.data}etc-link/passwd\n`) }
        : m,
  );
  const infoTar = await packTarZst(info, 0);
  writeFileSync(
    out.path,
    writeStoredZip(
      members.map((m) =>
        m.name.startsWith('pkg-') ? { ...m, data: pkgTar } : m.name.startsWith('info-') ? { ...m, data: infoTar } : m,
      ),
      0,
    ),
  );
  await assert.rejects(checkCondaPackage(out.path), { code: 'ACCEL_CONDA_PACKAGE_UNSAFE_PATH' });
});
