import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import { loadRecipe } from '../../src/conda/recipe.ts';
import { renderRecipe } from '../../src/conda/render.ts';
import { ROOT, sha256, testNeeding } from '../helpers.ts';
import { CROSS_BUILD_TOOLS } from './conda-build-harness.ts';

/** Every test here runs the cross toolchain: without them it skips, naming them. */
const test = testNeeding(...CROSS_BUILD_TOOLS);

const FEEDSTOCKS = join(ROOT, 'examples', 'feedstocks');
const UPSTREAM = join(FEEDSTOCKS, 'upstream');

async function tarFiles(file: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const ex = extract();
  Readable.from(readFileSync(file)).pipe(createGunzip()).pipe(ex);
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    if (entry.header.type === 'file') files.set(entry.header.name, Buffer.concat(chunks));
  }
  return files;
}

test('each example tarball holds exactly its source directory (edit a source, rerun make-tarballs.sh)', async () => {
  const tarballs = readdirSync(UPSTREAM).filter((f) => f.endsWith('.tar.gz'));
  assert.equal(tarballs.length, 4);
  for (const tarball of tarballs) {
    const dir = tarball.replace(/\.tar\.gz$/, '');
    const packed = await tarFiles(join(UPSTREAM, tarball));
    const onDisk = readdirSync(join(UPSTREAM, dir)).filter((f) => statSync(join(UPSTREAM, dir, f)).isFile());
    assert.deepEqual([...packed.keys()].sort(), onDisk.map((f) => `${dir}/${f}`).sort(), tarball);
    for (const f of onDisk) {
      assert.ok(packed.get(`${dir}/${f}`)?.equals(readFileSync(join(UPSTREAM, dir, f))), `${tarball}: ${f} differs`);
    }
  }
});

test('each example recipe pins the sha256 of its checked-in tarball, and builds with a conda-forge style script', () => {
  const options = { targetPlatform: 'linux-aarch64', buildPlatform: 'linux-64', variantFiles: [], env: {} };
  const seen = new Set<string>();
  for (const feedstock of readdirSync(FEEDSTOCKS).filter((f) => f.endsWith('-feedstock'))) {
    for (const r of renderRecipe(loadRecipe(join(FEEDSTOCKS, feedstock)), options).records) {
      const [source] = r.sources;
      const tarball = source?.url?.split('/').pop() as string;
      assert.equal(source?.sha256, sha256(readFileSync(join(UPSTREAM, tarball))), `${r.name}: ${tarball}`);
      assert.match(r.script?.text ?? '', /\$\{?PREFIX/, `${r.name} installs into $PREFIX`);
      if (r.subdir !== 'noarch') assert.match(r.script?.text ?? '', /\$\{?CC\b/, `${r.name} compiles with $CC`);
      seen.add(tarball);
    }
  }
  assert.equal(seen.size, 4);
});
