import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePlatform, platformNames } from '../../src/conda/platform.ts';
import { applySelectors } from '../../src/conda/selectors.ts';
import { isAccelError } from '../../src/core/errors.ts';

function keeps(selector: string, target: string, variant: Record<string, string> = {}, build = 'linux-64'): boolean {
  const names = platformNames(parsePlatform(target), parsePlatform(build), { ...variant, target_platform: target });
  const out = applySelectors(`  - pkg  # [${selector}]`, 'meta.yaml', names);
  if (out === '  - pkg') return true;
  assert.equal(out, '', 'a false selector empties the line');
  return false;
}

// [selector, target platform, variant, expected]
const CASES: [string, string, Record<string, string>, boolean][] = [
  ['aarch64', 'linux-aarch64', {}, true],
  ['aarch64', 'linux-64', {}, false],
  ['linux', 'linux-aarch64', {}, true],
  ['linux', 'osx-arm64', {}, false],
  ['unix', 'osx-64', {}, true],
  ['win', 'win-64', {}, true],
  ['not win', 'linux-aarch64', {}, true],
  ['linux and not ppc64le', 'linux-aarch64', {}, true],
  ['linux and not ppc64le', 'linux-ppc64le', {}, false],
  ['osx or win', 'linux-aarch64', {}, false],
  ['x86_64', 'linux-64', {}, true],
  ['x86_64', 'linux-aarch64', {}, false],
  ['linux64', 'linux-64', {}, true],
  ['arm64', 'osx-arm64', {}, true],
  ['arm64', 'linux-aarch64', {}, false],
  ['py>=38', 'linux-64', { python: '3.11' }, true],
  ['py>=312', 'linux-64', { python: '3.11' }, false],
  ['py==311', 'linux-64', { python: '3.11.* *_cpython' }, true],
  ['py<38', 'linux-64', { python: '3.8' }, false],
  ['py3k', 'linux-64', { python: '3.10' }, true],
  ['py>=38', 'linux-64', {}, false],
  ['linux and py>=38', 'linux-aarch64', { python: '3.12' }, true],
  ['build_platform != target_platform', 'linux-aarch64', {}, true],
  ['build_platform != target_platform', 'linux-64', {}, false],
  ['target_platform == "linux-aarch64"', 'linux-aarch64', {}, true],
  ["target_platform == 'osx-64'", 'linux-aarch64', {}, false],
  ['(linux or osx) and not aarch64', 'linux-64', {}, true],
  ['(linux or osx) and not aarch64', 'linux-aarch64', {}, false],
  ['unknown_name', 'linux-aarch64', {}, false],
  ['not unknown_name', 'linux-aarch64', {}, true],
  ['cuda_compiler_version != "None"', 'linux-64', { cuda_compiler_version: '12.0' }, true],
  ['cuda_compiler_version != "None"', 'linux-64', { cuda_compiler_version: 'None' }, false],
  ['blas_impl == "openblas"', 'linux-64', {}, false],
  ['gcc_maj_ver < 15', 'linux-64', { gcc_maj_ver: '13' }, true],
  ['gcc_maj_ver < 15', 'linux-64', { gcc_maj_ver: '15' }, false],
  ['win and int(float(vc)) < 14', 'win-64', { vc: '9' }, true],
  ['win and int(float(vc)) < 14', 'win-64', { vc: '14.3' }, false],
  ['cross_target_platform in ("osx-64", "osx-arm64")', 'linux-64', { cross_target_platform: 'osx-64' }, true],
  ['riscv64', 'linux-riscv64', {}, true],
  ['is_rc', 'linux-64', { is_rc: 'False' }, false],
  ['not is_rc', 'linux-64', { is_rc: 'False' }, true],
  ['is_rc', 'linux-64', { is_rc: 'True' }, true],
];

for (const [selector, target, variant, expected] of CASES) {
  test(`selector [${selector}] on ${target}${variant.python ? ` py ${variant.python}` : ''} → ${expected}`, () => {
    assert.equal(keeps(selector, target, variant), expected);
  });
}

test('selectors keep the line count and strip the comment of a true selector', () => {
  const names = platformNames(parsePlatform('linux-aarch64'), parsePlatform('linux-64'), {});
  const src =
    'a: 1\nb: 2  # [win]\nc: 3  # [linux]\n# just a comment [not a selector] here\nd: "#[x]"\ne: 5  # docs only [win]';
  const out = applySelectors(src, 'meta.yaml', names);
  assert.equal(out, 'a: 1\n\nc: 3\n# just a comment [not a selector] here\nd: "#[x]"\n');
});

test('a selector that does not parse names its line', () => {
  const names = platformNames(parsePlatform('linux-64'), parsePlatform('linux-64'), {});
  assert.throws(
    () => applySelectors('a: 1\nb: 2  # [linux and]\n', 'meta.yaml', names),
    (err: unknown) =>
      isAccelError(err) && err.code === 'ACCEL_CONDA_JINJA_SYNTAX' && /^meta\.yaml:2: /.test(err.message),
  );
});
