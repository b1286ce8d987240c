import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { AccelError } from '../../src/core/errors.ts';
import { dlopenAddon, runtimeGlibc } from '../../src/core/native.ts';
import { needsTools, tempDir } from '../helpers.ts';

function gcc(args: string[], cwd: string): void {
  const r = spawnSync('gcc', args, { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `gcc ${args.join(' ')}: ${r.stderr}`);
}

test('an addon that needs a newer glibc than the system has is named in a clear error', needsTools('gcc'), (t) => {
  // Build a real shared object that asks for symbol version GLIBC_2.99, as an addon built on a newer
  // distribution would: link it against a stand-in libc.so.6 that defines that version.
  const dir = tempDir(t);
  writeFileSync(join(dir, 'stub.c'), 'void accel_fake_symbol(void) {}\n');
  writeFileSync(join(dir, 'v.map'), 'GLIBC_2.99 { global: accel_fake_symbol; local: *; };\n');
  writeFileSync(
    join(dir, 'addon.c'),
    'extern void accel_fake_symbol(void);\nvoid use_it(void) { accel_fake_symbol(); }\n',
  );
  gcc(['-shared', '-fPIC', '-o', 'libc.so.6', 'stub.c', '-Wl,--version-script=v.map', '-Wl,-soname,libc.so.6'], dir);
  gcc(['-shared', '-fPIC', '-o', 'addon.node', 'addon.c', './libc.so.6'], dir);

  const system = runtimeGlibc();
  assert.match(system ?? '', /^2\.\d+$/, 'this machine runs glibc');
  assert.throws(
    () => dlopenAddon(join(dir, 'addon.node'), '2.99'),
    (e: unknown) =>
      e instanceof AccelError &&
      e.code === 'ACCEL_NATIVE_GLIBC' &&
      e.message.includes('needs glibc 2.99 or newer') &&
      e.message.includes(`this system has glibc ${system}`) &&
      (e.hint ?? '').includes('glibc 2.34'),
  );
});

test('a file that is not an addon at all is ACCEL_NATIVE_LOAD, with a way out', (t) => {
  const file = join(tempDir(t), 'broken.node');
  writeFileSync(file, 'not an ELF file');
  assert.throws(
    () => dlopenAddon(file),
    (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_NATIVE_LOAD' && (e.hint ?? '').includes('native/'),
  );
});
