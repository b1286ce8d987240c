import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChannelPackage } from '../../src/conda/builder/channel-packages.ts';
import { solve } from '../../src/conda/builder/channel-packages.ts';
import { compareVersions, parseSpec, specMatches, versionMatches } from '../../src/conda/builder/match.ts';

test('versions order like conda: pre-releases before the release, numbers numerically', () => {
  assert.ok(compareVersions('1.3.0a0', '1.3.0') < 0);
  assert.ok(compareVersions('1.2.10', '1.2.9') > 0);
  assert.ok(compareVersions('1.2', '1.2.0') === 0);
  assert.ok(compareVersions('2024.1', '2023.12') > 0);
  assert.ok(compareVersions('1.0rc1', '1.0') < 0);
});

test('match specs as feedstocks write them', () => {
  assert.deepEqual(parseSpec('libgreet >=1.2.0,<1.3.0a0'), {
    name: 'libgreet',
    version: '>=1.2.0,<1.3.0a0',
    build: null,
  });
  assert.deepEqual(parseSpec('libgreet 1.2.0 hbb08499_0'), { name: 'libgreet', version: '1.2.0', build: 'hbb08499_0' });
  assert.deepEqual(parseSpec('zlib>=1.2'), { name: 'zlib', version: '>=1.2', build: null });
  assert.equal(versionMatches('1.2.0', '>=1.2.0,<1.3.0a0'), true);
  assert.equal(versionMatches('1.3.0', '>=1.2.0,<1.3.0a0'), false);
  assert.equal(versionMatches('1.2.7', '1.2'), true, 'a bare version is fuzzy');
  assert.equal(versionMatches('1.20', '1.2'), false);
  assert.equal(versionMatches('1.2.7', '1.2.*'), true);
  assert.equal(versionMatches('0.9', '>=2|<1'), true);
  assert.equal(versionMatches('1.5', '>=2|<1'), false);
  assert.equal(versionMatches('1.2', '==1.2'), true);
  assert.equal(versionMatches('1.2.1', '==1.2'), false);
  const pkg = { name: 'libgreet', version: '1.2.0', build: 'hbb08499_0' };
  assert.equal(specMatches(parseSpec('libgreet 1.2.0 hbb08499_0'), pkg), true);
  assert.equal(specMatches(parseSpec('libgreet 1.2.0 h0_*'), pkg), false);
  assert.equal(specMatches(parseSpec('libgreet * hbb*'), pkg), true);
});

function pkg(name: string, version: string, depends: string[] = [], build_number = 0): ChannelPackage {
  const build = `h0_${build_number}`;
  return {
    subdir: 'linux-aarch64',
    filename: `${name}-${version}-${build}.conda`,
    name,
    version,
    build,
    build_number,
    depends,
    sha256: '0'.repeat(64),
    timestamp: 0,
  };
}

test('solve takes the newest match and follows run dependencies; what nothing provides is listed', () => {
  const channel = [
    pkg('libgreet', '1.1.0'),
    pkg('libgreet', '1.2.0'),
    pkg('libgreet', '1.2.0', [], 1),
    pkg('libgreet', '2.0.0'),
    pkg('libshout', '0.3.1', ['libgreet >=1.2.0,<1.3.0a0', '__glibc >=2.17']),
  ];
  const got = solve(['libshout', 'libgreet 1.2'], channel);
  assert.deepEqual(got.unsatisfied, []);
  assert.deepEqual(
    got.packages.map((p) => p.filename),
    ['libgreet-1.2.0-h0_1.conda', 'libshout-0.3.1-h0_0.conda'],
  );
  const missing = solve(['libshout', 'nothere >=1', 'libgreet 3'], channel);
  assert.deepEqual(missing.unsatisfied.sort(), ['libgreet 3', 'nothere >=1']);
  const conflict = solve(['libgreet 2', 'libshout'], channel);
  assert.deepEqual(conflict.unsatisfied, [
    'libgreet >=1.2.0,<1.3.0a0 (needed by libshout-0.3.1-h0_0.conda), conflicts with libgreet-2.0.0-h0_0.conda',
  ]);
});
