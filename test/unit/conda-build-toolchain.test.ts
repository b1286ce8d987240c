import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveToolchain } from '../../src/conda/builder/cross-toolchain.ts';
import { needsTools, tempDir } from '../helpers.ts';

/** A PATH holding only the given tools of /usr/bin, as links. */
function pathWith(dir: string, keep: (name: string) => boolean): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const name of readdirSync('/usr/bin')) if (keep(name)) symlinkSync(join('/usr/bin', name), join(bin, name));
  return bin;
}

const C_BUILD = ['gcc_linux-aarch64 12', 'sysroot_linux-aarch64 2.17', 'make'];

test(
  'compiler(c), stdlib(c) and make map to Debian’s cross toolchain, with conda-forge’s variables',
  needsTools('aarch64-linux-gnu-gcc'),
  () => {
    const { toolchain, missing } = resolveToolchain('linux-aarch64', [...C_BUILD, 'libfoo-tools'], process.env);
    assert.deepEqual(missing, ['libfoo-tools'], 'what is not a tool is left for the channel');
    assert.equal(toolchain.cross, true);
    assert.equal(toolchain.host, 'aarch64-linux-gnu');
    assert.equal(toolchain.build, 'x86_64-linux-gnu');
    // The variables name commands, as conda-forge's activation does; the paths are kept apart.
    assert.equal(toolchain.env.CC, 'aarch64-linux-gnu-gcc');
    assert.equal(toolchain.env.AR, 'aarch64-linux-gnu-ar');
    assert.match(toolchain.paths.RANLIB ?? '', /\/aarch64-linux-gnu-ranlib$/);
    // gcc_bootstrap (conda-forge's compiler for zlib) is the same cross gcc; an unknown compiler lists the known.
    const bootstrap = resolveToolchain('linux-aarch64', ['gcc_bootstrap_linux-aarch64 14'], process.env).toolchain;
    assert.equal(bootstrap.env.CC, 'aarch64-linux-gnu-gcc');
    assert.throws(
      () => resolveToolchain('linux-aarch64', ['icx_linux-aarch64 2024'], process.env),
      /icx_linux-aarch64: no compiler of this machine stands in for it \(known: gcc_linux-aarch64, gcc_bootstrap_linux-aarch64/,
    );
    assert.match(toolchain.emulator ?? '', /qemu-aarch64-static$/);
    assert.equal(toolchain.sysroot, '/usr/aarch64-linux-gnu');
    assert.match(toolchain.identity, /^gcc \d+\.\d+/m, 'the compiler version is part of every build’s inputs');
  },
);

test('a missing C++ cross compiler is named by its apt package; a noarch build needs no compiler', (t) => {
  const dir = tempDir(t, 'accel-toolchain-');
  const PATH = pathWith(dir, (n) => n.startsWith('aarch64-linux-gnu-') && !n.includes('g++'));
  assert.throws(
    () => resolveToolchain('linux-aarch64', [...C_BUILD, 'gxx_linux-aarch64 12'], { PATH }),
    (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, 'ACCEL_CONDA_NO_TOOLCHAIN');
      assert.match(err.message, /g\+\+-aarch64-linux-gnu/);
      assert.match(err.message, /\bmake\b/);
      assert.match(err.message, /qemu-user-static/);
      assert.doesNotMatch(err.message, /\bgcc-aarch64-linux-gnu/);
      assert.match(err.hint ?? '', /^install it with: apt-get install -y /);
      return true;
    },
  );
  // Without qemu, a cross build whose tests are skipped still resolves (--test skip).
  const noQemu = pathWith(join(dir, 'noqemu'), (n) => n.startsWith('aarch64-linux-gnu-') || n === 'make');
  assert.throws(() => resolveToolchain('linux-aarch64', C_BUILD, { PATH: noQemu }), /qemu-user-static/);
  const skipped = resolveToolchain('linux-aarch64', C_BUILD, { PATH: noQemu }, false).toolchain;
  assert.equal(skipped.emulator, null);
  const noarch = resolveToolchain('noarch', [], { PATH: join(dir, 'nothing') });
  assert.deepEqual(noarch.missing, []);
  assert.throws(() => resolveToolchain('osx-arm64', [], process.env), /cannot build for osx-arm64/);
});
