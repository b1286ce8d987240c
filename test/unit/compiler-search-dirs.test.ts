import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseSearchDirs, probeSearchDirs, searchDirsOnce } from '../../src/compiler/search-dirs.ts';
import { needsTools, tempDir } from '../helpers.ts';

/** The directory gcc keeps its own headers in (stddef.h, …): always on its search list. */
const ownInclude = (gcc: string) => execFileSync(gcc, ['-print-file-name=include'], { encoding: 'utf8' }).trim();

test('gcc: the C and C++ lists, in search order, the compiler’s own directory among them', needsTools('gcc'), () => {
  const c = probeSearchDirs('gcc', { language: 'c' });
  assert.ok(c, 'gcc printed a search list');
  assert.deepEqual(c.quote, []);
  assert.deepEqual(c.frameworks, []);
  assert.ok(c.bracket.includes(ownInclude('gcc')), JSON.stringify(c.bracket));
  assert.equal(c.bracket.at(-1), '/usr/include');
  assert.ok(
    c.bracket.every((d) => d.startsWith('/') && d.trim() === d),
    JSON.stringify(c.bracket),
  );
  const cxx = probeSearchDirs('gcc', { language: 'c++' });
  assert.ok(cxx);
  // The C++ library's headers come first, then everything C searches.
  assert.match(cxx.bracket[0] ?? '', /\/c\+\+\/\d+$/);
  assert.deepEqual(
    cxx.bracket.filter((d) => !c.bracket.includes(d)),
    cxx.bracket.slice(0, cxx.bracket.length - c.bracket.length),
  );
});

test('a cross gcc: its target’s directories, not the host’s', needsTools('aarch64-linux-gnu-gcc'), () => {
  const cross = 'aarch64-linux-gnu-gcc';
  const dirs = probeSearchDirs(cross, { language: 'c' });
  assert.ok(dirs);
  assert.ok(dirs.bracket.includes(ownInclude(cross)), JSON.stringify(dirs.bracket));
  assert.ok(!dirs.bracket.some((d) => d.includes('x86_64-linux-gnu')), JSON.stringify(dirs.bracket));
  const cxx = probeSearchDirs(cross, { language: 'c++' });
  assert.ok(
    cxx?.bracket.some((d) => /aarch64-linux-gnu\/include\/c\+\+\/\d+$/.test(d)),
    JSON.stringify(cxx),
  );
});

test('the probe passes the environment and the options', needsTools('gcc'), (t) => {
  const dir = tempDir(t);
  const extra = join(dir, 'cpath');
  const quoted = join(dir, 'quoted');
  mkdirSync(extra);
  mkdirSync(quoted);
  const dirs = probeSearchDirs('gcc', {
    language: 'c',
    options: ['-iquote', quoted],
    env: { ...process.env, CPATH: extra },
  });
  assert.ok(dirs);
  assert.deepEqual(dirs.quote, [quoted]);
  assert.equal(dirs.bracket[0], extra);
});

test('a compiler that fails or prints no list: undefined, and asked once per process', (t) => {
  assert.equal(probeSearchDirs('/bin/false', { language: 'c' }), undefined);
  assert.equal(probeSearchDirs('/bin/true', { language: 'c' }), undefined);
  assert.equal(probeSearchDirs(join(tempDir(t), 'no-such-compiler'), { language: 'c' }), undefined);
  assert.equal(parseSearchDirs('gcc: fatal error: no input files\n'), undefined);
  assert.equal(parseSearchDirs('#include <...> search starts here:\n /usr/include\n'), undefined);
  const once = searchDirsOnce('/bin/false', { language: 'c' });
  assert.equal(once, undefined);
  assert.equal(searchDirsOnce('/bin/false', { language: 'c' }), once);
});

test('clang’s list on macOS: quote dirs, and framework directories named without their mark', () => {
  const stderr = [
    'Apple clang version 15.0.0 (clang-1500.1.0.2.5)',
    'Target: arm64-apple-darwin23.2.0',
    'clang -cc1 version 15.0.0 (clang-1500.1.0.2.5) default target arm64-apple-darwin23.2.0',
    'ignoring nonexistent directory "/Library/Developer/CommandLineTools/SDKs/MacOSX.sdk/usr/local/include"',
    'ignoring nonexistent directory "/Library/Developer/CommandLineTools/SDKs/MacOSX.sdk/Library/Frameworks"',
    '#include "..." search starts here:',
    ' /Users/me/src/quoted',
    '#include <...> search starts here:',
    ' /usr/local/include',
    ' /Library/Developer/CommandLineTools/usr/lib/clang/15.0.0/include',
    ' /Library/Developer/CommandLineTools/SDKs/MacOSX.sdk/usr/include',
    ' /Library/Developer/CommandLineTools/usr/include',
    ' /Library/Developer/CommandLineTools/SDKs/MacOSX.sdk/System/Library/Frameworks (framework directory)',
    'End of search list.',
    '',
  ].join('\n');
  const frameworks = '/Library/Developer/CommandLineTools/SDKs/MacOSX.sdk/System/Library/Frameworks';
  assert.deepEqual(parseSearchDirs(stderr), {
    quote: ['/Users/me/src/quoted'],
    bracket: [
      '/usr/local/include',
      '/Library/Developer/CommandLineTools/usr/lib/clang/15.0.0/include',
      '/Library/Developer/CommandLineTools/SDKs/MacOSX.sdk/usr/include',
      '/Library/Developer/CommandLineTools/usr/include',
      frameworks,
    ],
    frameworks: [frameworks],
  });
});

test('clang’s list on Linux, with Windows line ends and a relative -I kept as printed', () => {
  const stderr = [
    'Ubuntu clang version 16.0.6 (15)',
    'Target: x86_64-pc-linux-gnu',
    '#include "..." search starts here:',
    '#include <...> search starts here:',
    ' include',
    ' /usr/lib/llvm-16/lib/clang/16/include',
    ' /usr/local/include',
    ' /usr/include/x86_64-linux-gnu',
    ' /usr/include',
    'End of search list.',
  ].join('\r\n');
  assert.deepEqual(parseSearchDirs(stderr), {
    quote: [],
    bracket: [
      'include',
      '/usr/lib/llvm-16/lib/clang/16/include',
      '/usr/local/include',
      '/usr/include/x86_64-linux-gnu',
      '/usr/include',
    ],
    frameworks: [],
  });
});
