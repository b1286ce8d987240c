import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { compilerIdentity } from '../../src/compiler/compiler-identity.ts';
import {
  cachedCompilerFacts,
  cachedCompilerVersion,
  compilerFacts,
  compilerVersion,
} from '../../src/compiler/facts.ts';
import { Store } from '../../src/store/store.ts';
import { needsTools, tempDir } from '../helpers.ts';

/**
 * A compiler that answers what accel asks and logs every call: `-dumpversion`, `-dumpmachine`, and a search
 * list of one directory for `-E -v`.
 */
function fakeCompiler(t: TestContext) {
  const dir = tempDir(t);
  const include = join(dir, 'include');
  mkdirSync(join(include, 'sys'), { recursive: true });
  writeFileSync(join(include, 'stdio.h'), 'int printf(const char *, ...);\n');
  writeFileSync(join(include, 'sys', 'types.h'), 'typedef long off_t;\n');
  const log = join(dir, 'calls.log');
  const path = join(dir, 'fakecc');
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      `echo "$(basename "$0") $*" >> '${log}'`,
      'case "$1" in',
      '  -dumpversion) echo 9.1.0 ;;',
      '  -dumpmachine) echo riscv64-linux-gnu ;;',
      `  *) printf '#include "..." search starts here:\\n#include <...> search starts here:\\n %s\\nEnd of search list.\\n' '${include}' >&2 ;;`,
      'esac',
    ].join('\n'),
  );
  chmodSync(path, 0o755);
  const store = Store.open({ home: join(dir, 'home') });
  t.after(() => store.close());
  const calls = () => readFileSync(log, 'utf8').trim().split('\n');
  return { dir, include, path, store, calls };
}

test('the version and target: asked once per binary, asked again when the binary changes', async (t) => {
  const { path, store, calls } = fakeCompiler(t);
  const identity = compilerIdentity(path);
  assert.deepEqual(await cachedCompilerVersion(store, identity), { version: '9.1.0', machine: 'riscv64-linux-gnu' });
  assert.deepEqual(await cachedCompilerVersion(store, identity), { version: '9.1.0', machine: 'riscv64-linux-gnu' });
  assert.deepEqual(calls(), ['fakecc -dumpversion', 'fakecc -dumpmachine']);
  // The index holds it under the identity, as `accel cc` has always kept it.
  const ref = store.refs.get('cc-compiler', `${identity.path}:${identity.size}:${identity.mtimeMs}`);
  assert.ok(ref);
  assert.deepEqual(ref.meta, { version: '9.1.0', machine: 'riscv64-linux-gnu' });
  assert.equal(store.read(ref.digest)?.toString(), JSON.stringify(ref.meta));
  utimesSync(path, new Date(), new Date(Date.now() + 5_000));
  await cachedCompilerVersion(store, compilerIdentity(path));
  assert.equal(calls().length, 4);
});

test('a fact already in the index is used as it is, never asked again', async (t) => {
  const { path, store, calls } = fakeCompiler(t);
  const identity = compilerIdentity(path);
  const old = { version: '8', machine: 'm68k-linux-gnu' };
  const blob = await store.putBuffer(Buffer.from(JSON.stringify(old)));
  store.refs.set('cc-compiler', `${identity.path}:${identity.size}:${identity.mtimeMs}`, blob.digest, old);
  assert.deepEqual(await cachedCompilerVersion(store, identity), old);
  assert.throws(() => calls(), { code: 'ENOENT' });
});

test('the facts a farm job depends on: name, version, target and the system headers’ names and sizes', async (t) => {
  const { dir, include, path, store, calls } = fakeCompiler(t);
  const facts = compilerFacts(path);
  assert.equal(facts.compiler, 'fakecc');
  assert.equal(facts.version, '9.1.0');
  assert.equal(facts.machine, 'riscv64-linux-gnu');
  assert.match(facts.system, /^[0-9a-f]{64}$/);
  assert.deepEqual(calls().slice(2), [`fakecc -x c -E -v /dev/null`]);
  // A header that changes size changes the digest; its contents alone do not.
  writeFileSync(join(include, 'stdio.h'), 'int printf(const char *, ...);\n'.replace('int', 'INT'));
  assert.equal(compilerFacts(path).system, facts.system);
  writeFileSync(join(include, 'sys', 'types.h'), 'typedef long long off_t;\n');
  assert.notEqual(compilerFacts(path).system, facts.system);
  // A C++ name asks for the C++ list.
  const cxx = join(dir, 'fakecc-g++');
  symlinkSync(path, cxx);
  assert.equal(compilerFacts(cxx).compiler, 'fakecc-g++');
  assert.equal(calls().at(-1), 'fakecc-g++ -x c++ -E -v /dev/null');

  // Cached per name and binary, under the key the farm's client has always used.
  const first = await cachedCompilerFacts(store, path);
  const asked = calls().length;
  assert.deepEqual(await cachedCompilerFacts(store, path), first);
  assert.equal(calls().length, asked);
  const id = compilerIdentity(path);
  assert.deepEqual(store.refs.get('farm-toolchain', `fakecc:${id.path}:${id.size}:${id.mtimeMs}`)?.meta, first);
  assert.equal((await cachedCompilerFacts(store, cxx)).compiler, 'fakecc-g++');
});

test('real compilers: gcc and a cross gcc', needsTools('gcc', 'aarch64-linux-gnu-gcc'), () => {
  for (const gcc of ['gcc', 'aarch64-linux-gnu-gcc']) {
    const dumped = (flag: string) => execFileSync(gcc, [flag], { encoding: 'utf8' }).trim();
    assert.deepEqual(compilerVersion(gcc), { version: dumped('-dumpversion'), machine: dumped('-dumpmachine') });
  }
  const host = compilerFacts('gcc');
  const cross = compilerFacts('aarch64-linux-gnu-gcc');
  assert.equal(cross.machine, 'aarch64-linux-gnu');
  assert.notEqual(cross.system, host.system);
  assert.notEqual(compilerFacts('g++').system, host.system, 'g++ also searches the C++ library’s headers');
});

test('a compiler that does not answer: empty facts, not an error', (t) => {
  assert.deepEqual(compilerVersion('/bin/false'), { version: '', machine: '' });
  const missing = join(tempDir(t), 'gone');
  assert.deepEqual(compilerVersion(missing), { version: '', machine: '' });
  assert.equal(compilerFacts('/bin/false').system, compilerFacts(missing).system);
});
