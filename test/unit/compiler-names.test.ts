import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { writeMasqueradeDir } from '../../src/cc/masquerade.ts';
import { isCompilerName } from '../../src/compiler/compiler-identity.ts';
import { COMPILER_NAMES } from '../../src/core/compiler-names.ts';
import { loadConfig } from '../../src/core/config.ts';
import { tempDir } from '../helpers.ts';

test('one list of compiler names: the farm’s default, the masquerade links, and what the wrapper takes', (t) => {
  const home = tempDir(t);
  assert.deepEqual(loadConfig(home, {}).config.farm.compilers, COMPILER_NAMES);
  assert.deepEqual(readdirSync(writeMasqueradeDir(home)).sort(), [...COMPILER_NAMES].sort());
  for (const name of COMPILER_NAMES) assert.ok(isCompilerName(`/usr/bin/${name}`), name);
  assert.ok(isCompilerName('aarch64-linux-gnu-gcc-12') && !isCompilerName('ld'));
  // The MSVC drivers: Debian's versioned clang-cl, and cl.exe by either spelling.
  assert.ok(isCompilerName('/usr/bin/clang-cl-14') && isCompilerName('cl.exe') && isCompilerName('cl'));
  assert.ok(!isCompilerName('clang-cl-tidy'));
});
