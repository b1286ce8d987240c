import assert from 'node:assert/strict';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { installCondaPackage } from '../../src/conda/pkg/install.ts';
import { replaceBinary, replaceText } from '../../src/conda/pkg/relocate.ts';
import { writeCondaPackage } from '../../src/conda/pkg/write.ts';
import { binaryWithPrefix, fillPrefix, paddedPrefix } from '../condapkg-fixture.ts';
import { listFiles, tempDir } from '../helpers.ts';

test('text replacement changes lengths; binary replacement pads each C string with NULs', () => {
  const p = Buffer.from('/build/placeholder_placeholder');
  const to = Buffer.from('/opt/x');
  assert.equal(replaceText(Buffer.from(`a=${p}/bin b=${p}\n`), p, to).toString(), 'a=/opt/x/bin b=/opt/x\n');
  const bin = Buffer.concat([Buffer.from('\x01\x02'), p, Buffer.from('/lib:'), p, Buffer.from('/lib64\0tail\0')]);
  const out = replaceBinary(bin, p, to);
  assert.equal(out.length, bin.length);
  const pad = 2 * (p.length - to.length);
  assert.deepEqual(
    out,
    Buffer.concat([Buffer.from('\x01\x02/opt/x/lib:/opt/x/lib64'), Buffer.alloc(pad), Buffer.from('\0tail\0')]),
  );
  assert.throws(() => replaceBinary(bin, to, p), RangeError);
});

async function packageWithPlaceholders(root: string) {
  const prefix = paddedPrefix(root);
  const files = fillPrefix(prefix, [
    { path: 'bin/foo-config', data: `#!/bin/sh\necho ${prefix}/include\n`, executable: true },
    { path: 'lib/libfoo.so.1', data: binaryWithPrefix(prefix) },
    { path: 'lib/libfoo.so', link: 'libfoo.so.1' },
    { path: 'share/foo.txt', data: 'plain\n' },
  ]);
  const index = { name: 'foo', version: '1.0', build: '0', build_number: 0, subdir: 'linux-aarch64', timestamp: 0 };
  const out = await writeCondaPackage({ prefix, files, placeholder: prefix, outDir: join(root, 'out'), index });
  return { prefix, path: out.path };
}

test('installs into a fresh prefix with text and binary placeholders replaced', async (t) => {
  const root = tempDir(t);
  const { prefix: buildPrefix, path } = await packageWithPlaceholders(root);
  const target = join(root, 'env');
  const result = await installCondaPackage(path, target);
  assert.equal(result.relocated, 2);
  assert.equal(readFileSync(join(target, 'bin/foo-config'), 'utf8'), `#!/bin/sh\necho ${target}/include\n`);
  assert.equal(lstatSync(join(target, 'bin/foo-config')).mode & 0o777, 0o755);
  const bin = readFileSync(join(target, 'lib/libfoo.so.1'));
  const original = binaryWithPrefix(buildPrefix);
  assert.equal(bin.length, original.length, 'a binary keeps its length');
  const pad = (n: number) => '\0'.repeat(n * (buildPrefix.length - target.length));
  assert.equal(
    bin.toString('latin1'),
    `\x7fELF\0\x01\x02\x03${target}/lib:${target}/lib64${pad(2)}\0${target}/share/data${pad(1)}\0other\0\0\0\xff`,
  );
  assert.equal(readlinkSync(join(target, 'lib/libfoo.so')), 'libfoo.so.1');
  assert.equal(readFileSync(join(target, 'share/foo.txt'), 'utf8'), 'plain\n');
  const record = JSON.parse(readFileSync(join(target, 'conda-meta/foo-1.0-0.json'), 'utf8'));
  assert.equal(record.name, 'foo');
  assert.deepEqual(record.files, ['bin/foo-config', 'lib/libfoo.so', 'lib/libfoo.so.1', 'share/foo.txt']);
  assert.deepEqual(readdirSync(target).sort(), ['bin', 'conda-meta', 'lib', 'share'], 'no staging left behind');
});

test('a target prefix longer than the placeholder is refused before anything is written', async (t) => {
  const root = tempDir(t);
  const { prefix, path } = await packageWithPlaceholders(root);
  const target = join(root, 'x'.repeat(prefix.length));
  await assert.rejects(installCondaPackage(path, target), (err: Error & { code?: string; hint?: string }) => {
    assert.equal(err.code, 'ACCEL_CONDA_PACKAGE_PREFIX_TOO_LONG');
    assert.match(err.hint ?? '', /shorter prefix/);
    return true;
  });
  assert.equal(existsSync(target), false);
});

test('a failure half-way through leaves the prefix as it was', async (t) => {
  const root = tempDir(t);
  const { path } = await packageWithPlaceholders(root);
  const target = join(root, 'env');
  fillPrefix(target, [
    { path: 'bin/foo-config', data: 'older package\n' },
    { path: 'lib', data: 'a file where the package needs a directory\n' },
  ]);
  const before = listFiles(target).sort();
  await assert.rejects(installCondaPackage(path, target), { code: 'ACCEL_FS_NOT_DIR' });
  assert.deepEqual(listFiles(target).sort(), before);
  assert.equal(readFileSync(join(target, 'bin/foo-config'), 'utf8'), 'older package\n', 'the replaced file is back');
  assert.deepEqual(readdirSync(target).sort(), ['bin', 'lib']);
});

test('a damaged package installs nothing', async (t) => {
  const root = tempDir(t);
  const { path } = await packageWithPlaceholders(root);
  const bytes = readFileSync(path);
  bytes[bytes.length - 200] = (bytes[bytes.length - 200] ?? 0) ^ 0xff;
  writeFileSync(path, bytes);
  const target = join(root, 'env');
  await assert.rejects(installCondaPackage(path, target), { code: 'ACCEL_CONDA_PACKAGE_NOT_ZIP' });
  assert.equal(existsSync(target), false);
});

test("a symlink another package left in the prefix cannot carry a later package's files out of it", async (t) => {
  const base = tempDir(t);
  const { mkdirSync, symlinkSync } = await import('node:fs');
  for (const d of ['outside', 'a', 'b/lib']) mkdirSync(join(base, d), { recursive: true });
  symlinkSync(join(base, 'outside'), join(base, 'a', 'lib'));
  writeFileSync(join(base, 'b', 'lib', 'evil'), 'written through the link\n');
  const index = (name: string) => ({ name, version: '1', build: '0', build_number: 0, subdir: 'noarch', timestamp: 0 });
  const pack = (name: string, files: string[]) =>
    writeCondaPackage({
      prefix: join(base, name),
      files,
      index: index(name),
      placeholder: '/nonexistent/placeholder',
      outDir: join(base, 'out'),
    });
  const a = await pack('a', ['lib']);
  const b = await pack('b', ['lib/evil']);
  const prefix = join(base, 'prefix');
  await installCondaPackage(a.path, prefix);
  await assert.rejects(installCondaPackage(b.path, prefix), /ACCEL_CONDA_PACKAGE_UNSAFE_PATH|outside/);
  assert.equal(existsSync(join(base, 'outside', 'evil')), false);
});
