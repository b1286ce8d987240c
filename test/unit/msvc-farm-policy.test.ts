// The farm's policy for an MSVC driver's job (policy.ts mapArgs with the job's compiler name): clang-cl's
// arguments read with cl's rules, paths mapped into the sandbox, sources last after `--`, debug info local.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mapArgs, Refusal } from '../../src/farm/policy.ts';

const job = (args: string[], compiler = 'clang-cl-14') =>
  mapArgs({ args, cwd: '/w/p', roots: ['/w'], root: '/sandbox', compiler });

const refusal = (fn: () => unknown): Refusal => {
  try {
    fn();
  } catch (err) {
    if (err instanceof Refusal) return err;
    throw err;
  }
  assert.fail('not refused');
};

test('clang-cl: /Fo and includes mapped, the prefix map first, sources after --, outputs named', () => {
  const m = job(['/showIncludes', '/Foout/a.obj', '/c', '/I', '/w/p/inc', '/Iinc', '/Tc', 'x.c', 'a.c']);
  assert.deepEqual(m.args, [
    '/clang:-ffile-prefix-map=/sandbox=',
    '/showIncludes',
    '/Foout/a.obj',
    '/c',
    '/I',
    '/sandbox/w/p/inc',
    '/Iinc',
    '/Tc',
    'x.c',
    '--',
    'a.c',
  ]);
  assert.deepEqual(m.outputs, ['/w/p/out/a.obj']);
  assert.equal(m.kind, 'compile');
  // An absolute source stays a source: after `--`, whatever option its mapped path starts like.
  assert.deepEqual(job(['/c', '/Fo/w/p/a.obj', '--', '/w/p/a.c']).args.slice(-3), [
    '/Fo/sandbox/w/p/a.obj',
    '--',
    '/sandbox/w/p/a.c',
  ]);
  // The same words from a gcc-style compiler are not an MSVC job: gcc reads /c as a file outside the tree.
  assert.equal(refusal(() => job(['/c', 'a.c'], 'gcc')).code, 'ACCEL_FARM_OUTSIDE_TREE');
  assert.ok(job(['--driver-mode=cl', '/c', 'a.c'], 'clang').args.includes('--'), 'clang in cl mode is clang-cl');
});

test('clang-cl on the farm refuses: a pass replaced, a path outside the tree, debug info, another driver mode; cl.exe', () => {
  assert.match(refusal(() => job(['/c', '/B1', 'x.so', 'a.c'])).message, /\/B1/);
  assert.equal(refusal(() => job(['/c', '/I/etc', 'a.c'])).code, 'ACCEL_FARM_OUTSIDE_TREE');
  for (const debug of ['/Z7', '/Zi', '-g', '/clang:-g']) {
    assert.match(refusal(() => job(['/c', debug, 'a.c'])).message, /debug information/, debug);
  }
  assert.equal(refusal(() => job(['/c', '--driver-mode=gcc', 'a.c'])).code, 'ACCEL_FARM_ARG_REFUSED');
  assert.equal(refusal(() => job(['/c', 'a.c'], 'cl.exe')).code, 'ACCEL_FARM_COMPILER_REFUSED');
});
