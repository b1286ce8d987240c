import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classify } from '../../src/compiler/args.ts';
import { expandCwd, parseBaseDirs, relativeToCwd } from '../../src/compiler/base-dirs.ts';
import { mapDepFilePaths } from '../../src/compiler/depfile.ts';
import { isAccelError } from '../../src/core/errors.ts';

const BASE = ['/builds'];

test('a path under a base directory becomes relative to the cwd, and comes back under another cwd byte for byte', () => {
  const cases: [string, string, string][] = [
    ['/builds/1/proj/inc', '/builds/1/proj/build', '$CWD/../inc'],
    ['/builds/1/proj/build', '/builds/1/proj/build', '$CWD'],
    ['/builds/1/proj/build/gen/x.h', '/builds/1/proj/build', '$CWD/gen/x.h'],
    // gcc writes a quoted include from an absolute source's directory unnormalised: kept so.
    ['/builds/1/proj/src/../inc/h.h', '/builds/1/proj/build', '$CWD/../src/../inc/h.h'],
    ['/builds/1/proj/inc/', '/builds/1/proj/build', '$CWD/../inc/'],
    // Another job's checkout is outside this cwd's tree: relative all the same, it differs from job to job.
    ['/builds/2/proj/inc', '/builds/1/proj/build', '$CWD/../../../2/proj/inc'],
  ];
  for (const [path, cwd, rel] of cases) {
    assert.equal(relativeToCwd(path, cwd, BASE), rel, path);
    assert.equal(expandCwd(rel, cwd), path);
    assert.equal(expandCwd(rel, cwd.replace('/1/', '/77/')), path.replace('/1/', '/77/'));
  }
  assert.equal(relativeToCwd('/usr/include/stdio.h', '/builds/1/proj/build', BASE), undefined, 'outside: as written');
  assert.equal(relativeToCwd('/buildsX/a', '/builds/1', BASE), undefined, 'a prefix is not a directory');
  assert.equal(relativeToCwd('/builds/1/proj/build/../inc', '/builds/1/proj/build', BASE), undefined, 'ambiguous');
  assert.equal(relativeToCwd('relative/x.h', '/builds/1', BASE), undefined);
  assert.equal(relativeToCwd('/builds/1/x.h', '/builds/1', []), undefined, 'no base directories: nothing changes');
  assert.equal(expandCwd('inc/x.h', '/w'), '/w/inc/x.h');
});

test('base directories: `:`-separated or a list; relative ones and / are refused with a code', () => {
  assert.deepEqual(parseBaseDirs('/builds:/home/ci/', 'X'), ['/builds', '/home/ci']);
  assert.deepEqual(parseBaseDirs(['/a', ''], 'X'), ['/a']);
  assert.deepEqual(parseBaseDirs('', 'X'), []);
  for (const bad of ['builds', '/']) {
    assert.throws(
      () => parseBaseDirs(bad, 'ACCEL_CC_BASEDIRS'),
      (err) =>
        isAccelError(err) && err.code.startsWith('ACCEL_CONFIG_BASE_DIR') && /ACCEL_CC_BASEDIRS/.test(err.message),
    );
  }
});

test('the key of a compile in two checkouts is the same; the compiler still gets the arguments as written', () => {
  const key = (ck: string) => {
    const args = [
      `-I${ck}/inc`,
      `-fdebug-prefix-map=${ck}=/src`,
      '-isystem',
      '/usr/local/include',
      '-c',
      `${ck}/src/a.c`,
    ];
    const c = classify('gcc', args, `${ck}/build`, { baseDirs: BASE });
    assert.equal(c.kind, 'cacheable');
    const compile = (c as Extract<typeof c, { kind: 'cacheable' }>).compile;
    assert.deepEqual(compile.args, args);
    assert.deepEqual(compile.portablePaths, [`${ck}/inc`, `${ck}/src/a.c`]);
    return [compile.keyArgs, compile.keySource];
  };
  assert.deepEqual(key('/builds/1/proj'), key('/builds/2/proj'));
  assert.deepEqual(key('/builds/1/proj'), [
    ['-I', '$CWD/../inc', '-fdebug-prefix-map=$CWD/..=/src', '-isystem', '/usr/local/include', '-c'],
    '$CWD/../src/a.c',
  ]);
});

test('a dependency file made portable and put back: only paths change, escapes and -MP rules kept', () => {
  const text =
    'out/a\\ b.o: /builds/1/p/src/a.c /usr/include/stdio.h \\\n /builds/1/p/inc/x\\ y.h ../rel.h /builds/1/p/inc/$$d.h\n' +
    '/builds/1/p/inc/x\\ y.h:\n../rel.h:\n';
  const cwdA = '/builds/1/p/build';
  const portable = mapDepFilePaths(text, (p) => relativeToCwd(p, cwdA, BASE)) as string;
  assert.ok(!portable.includes('/builds/1'), portable);
  assert.ok(
    portable.startsWith('out/a\\ b.o: $CWD/../src/a.c /usr/include/stdio.h \\\n $CWD/../inc/x\\ y.h'),
    portable,
  );
  const back = (cwd: string) =>
    mapDepFilePaths(portable, (p) => (p.startsWith('$CWD') ? expandCwd(p, cwd) : undefined)) as string;
  assert.equal(back(cwdA), text);
  assert.equal(back('/builds/2/p/build'), text.replaceAll('/builds/1/', '/builds/2/'));
});
