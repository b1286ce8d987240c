import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { simpleSolve } from '@conda-org/rattler';
import { indexChannel } from '../../src/conda/pkg/channel-index.ts';
import { installCondaPackage } from '../../src/conda/pkg/install.ts';
import { checkCondaPackage } from '../../src/conda/pkg/read.ts';
import type { IndexInput } from '../../src/conda/pkg/types.ts';
import { writeCondaPackage } from '../../src/conda/pkg/write.ts';
import { binaryWithPrefix, fillPrefix, paddedPrefix } from '../condapkg-fixture.ts';
import { sha256, tempDir } from '../helpers.ts';
import { serveCli } from '../mirror-harness.ts';

/*
 * The channel as an independent client sees it: packages made by our writer, indexed by indexChannel,
 * served by a real `accel mirror serve` process, solved by rattler (the solver of pixi and rattler-build,
 * compiled to WASM) over HTTP, then downloaded, checked and installed.
 */

type Spec = Omit<IndexInput, 'build_number' | 'timestamp'> & { files: Record<string, Buffer | string> };

async function build(root: string, channel: string, spec: Spec) {
  const { files, ...index } = spec;
  const prefix = paddedPrefix(join(root, 'build', `${index.name}-${index.version}`));
  const list = fillPrefix(
    prefix,
    Object.entries(files).map(([path, data]) => ({
      path,
      data: typeof data === 'string' ? data.replaceAll('@PREFIX@', prefix) : data,
    })),
  );
  if (list.includes('lib/libfoo.so.1')) writeFileSync(join(prefix, 'lib/libfoo.so.1'), binaryWithPrefix(prefix));
  await writeCondaPackage({
    prefix,
    files: list,
    placeholder: prefix,
    outDir: join(channel, index.subdir),
    index: { ...index, build_number: 0, timestamp: 1_763_000_000_000 },
    about: { summary: `${index.name} test package`, license: 'MIT' },
  });
}

const AARCH64 = 'linux-aarch64';

async function makeChannel(root: string): Promise<string> {
  const channel = join(root, 'channel');
  mkdirSync(channel);
  const lib = { 'lib/libfoo.so.1': '' };
  // Decoys: an older libfoo, and a newer one that libbar's pin excludes.
  await build(root, channel, {
    name: 'libfoo',
    version: '0.9.0',
    build: 'h0_0',
    subdir: AARCH64,
    depends: [],
    files: lib,
  });
  await build(root, channel, {
    name: 'libfoo',
    version: '2.0.0',
    build: 'h0_0',
    subdir: AARCH64,
    depends: ['__glibc >=2.17'],
    files: lib,
  });
  await build(root, channel, {
    name: 'libfoo',
    version: '1.2.3',
    build: 'h0_0',
    subdir: AARCH64,
    depends: ['__glibc >=2.17'],
    files: lib,
  });
  await build(root, channel, {
    name: 'libbar',
    version: '2.0.1',
    build: 'h1_0',
    subdir: AARCH64,
    depends: ['libfoo >=1.2,<2'],
    files: { 'lib/libbar.txt': 'libbar\n' },
  });
  await build(root, channel, {
    name: 'foodata',
    version: '2026.1',
    build: 'pyh_0',
    subdir: 'noarch',
    noarch: 'generic',
    files: { 'share/foodata/table.txt': 'data\n' },
  });
  await build(root, channel, {
    name: 'foocli',
    version: '0.3.0',
    build: 'h2_0',
    subdir: AARCH64,
    depends: ['libfoo >=1.2', 'libbar 2.*', 'foodata'],
    files: { 'bin/foocli': '#!/bin/sh\nexec @PREFIX@/lib/libfoo.so.1 "$@"\n' },
  });
  await indexChannel(channel);
  return channel;
}

/** rattler takes installed packages in place of virtual ones: the target system's glibc. */
const GLIBC = {
  url: 'https://virtual.invalid/__glibc-2.28-0.conda',
  packageName: '__glibc',
  version: '2.28',
  build: '0',
  buildNumber: 0,
  filename: '__glibc-2.28-0.conda',
  subdir: AARCH64,
  depends: [],
};

test('rattler solves foocli from the channel served by accel mirror serve, and the packages install', async (t) => {
  const root = tempDir(t);
  const channel = await makeChannel(root);
  const home = join(root, 'home');
  mkdirSync(home);
  writeFileSync(join(home, 'config.json'), JSON.stringify({ mirror: { condaChannels: { local: channel } } }));
  const mirror = await serveCli(t, home);
  const url = `${mirror.base}/conda/local`;

  const solved = await simpleSolve(['foocli'], [url], [AARCH64, 'noarch'], [GLIBC]);
  const got = Object.fromEntries(solved.map((p) => [p.packageName, p]));
  assert.deepEqual(solved.map((p) => `${p.packageName}=${p.version}=${p.build}`).sort(), [
    '__glibc=2.28=0',
    'foocli=0.3.0=h2_0',
    'foodata=2026.1=pyh_0',
    'libbar=2.0.1=h1_0',
    'libfoo=1.2.3=h0_0',
  ]);
  assert.equal(got.foodata?.subdir, 'noarch');
  assert.equal(got.foocli?.url, `${url}/${AARCH64}/foocli-0.3.0-h2_0.conda`);

  // Without the virtual package the channel cannot satisfy libfoo's __glibc requirement.
  await assert.rejects(simpleSolve(['foocli'], [url], [AARCH64, 'noarch'], []), /__glibc/);

  // Download what the solver chose, as a client would, check and install it.
  const env = join(root, 'env');
  for (const p of solved) {
    if (p.packageName.startsWith('__')) continue;
    const res = await fetch(p.url);
    assert.equal(res.status, 200, p.url);
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.equal(sha256(bytes), p.sha256, `${p.filename}: sha256 in repodata equals the served bytes`);
    assert.equal(BigInt(bytes.length), BigInt(p.size ?? -1));
    const file = join(root, 'downloads', p.filename);
    mkdirSync(join(root, 'downloads'), { recursive: true });
    writeFileSync(file, bytes);
    await checkCondaPackage(file);
    await installCondaPackage(file, env);
  }
  assert.equal(readFileSync(join(env, 'bin/foocli'), 'utf8'), `#!/bin/sh\nexec ${env}/lib/libfoo.so.1 "$@"\n`);
  const lib = readFileSync(join(env, 'lib/libfoo.so.1')).toString('latin1');
  assert.ok(lib.includes(`${env}/lib:${env}/lib64\0`), 'binary placeholder relocated in place');
  assert.equal(readFileSync(join(env, 'share/foodata/table.txt'), 'utf8'), 'data\n');
});
