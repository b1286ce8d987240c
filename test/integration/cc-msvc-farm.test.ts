// A clang-cl cache miss compiled on the farm: a real syncer and worker on loopback, the worker running Debian's
// clang-cl for x86_64-pc-windows-msvc in its sandbox. The object must be clang-cl's own as compiled here.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test as nodeTest, type TestContext } from 'node:test';
import { findClangCl, MAIN, ok, runCommand, tempDir } from '../helpers.ts';
import { ccStats, farmCerts, startSyncer, startWorker } from './farm-harness.ts';

const CLANG_CL = findClangCl();
const SKIP = CLANG_CL ? false : 'missing tool: clang-cl (install clang-tools, or run bash scripts/setup.sh --test)';
const test = (name: string, fn: (t: TestContext) => Promise<void>) => nodeTest(name, { skip: SKIP }, fn);

const BASE = ['--target=x86_64-pc-windows-msvc', '/nologo', '/X', '/Brepro'];

test('accel cc -- clang-cl on the farm: objects identical to a local clang-cl, header lines and warnings as here; /Z7 stays local', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'proj');
  mkdirSync(join(src, 'inc'), { recursive: true });
  mkdirSync(join(src, 'out'));
  writeFileSync(join(src, 'inc', 'a.h'), '#pragma once\n#define A 1\nstatic const char *where = __FILE__;\n');
  writeFileSync(join(src, 'main.c'), '#include "a.h"\n#pragma message("hi")\nint main(void) { return A + !where; }\n');
  writeFileSync(join(src, 'two.c'), '#include <a.h>\nint two(void) { return A; }\n');
  const homes = await farmCerts(dir, { syncer: 'syncer', worker: 'worker', dev: 'client' });
  // A versioned name (Debian's clang-cl-14) is on no default list: the farm is told to take it.
  const config = JSON.stringify({ farm: { compilers: ['gcc', basename(CLANG_CL as string)] } });
  for (const home of Object.values(homes)) writeFileSync(join(home, 'config.json'), config);
  const syncer = await startSyncer(t, homes.syncer as string, [src]);
  await startWorker(t, homes.worker as string, syncer.url, 2);
  const dev = homes.dev as string;
  const env = { ACCEL_FARM_SYNCER: syncer.url };
  const cc = (args: string[]) =>
    runCommand(process.execPath, [MAIN, '--home', dev, 'cc', '--', CLANG_CL as string, ...BASE, ...args], {
      cwd: src,
      env,
    });
  const plain = (args: string[]) => runCommand(CLANG_CL as string, [...BASE, ...args], { cwd: src });

  // An absolute include dir and source (after --): __FILE__ names them, and must name the client's paths.
  const one = (out: string, ...extra: string[]) => ['/c', `/I${src}/inc`, ...extra, `/Foout/${out}`, 'main.c'];
  const two = (out: string) => ['/c', '/I', `${src}/inc`, `/Fo${src}/out/${out}`, '--', join(src, 'two.c')];
  const local1 = await plain(one('p1.obj'));
  ok(local1, 'clang-cl main.c');
  const local2 = await plain(['/showIncludes', ...two('p2.obj')]);
  ok(local2, 'clang-cl two.c');
  const farm1 = await cc(one('f1.obj'));
  ok(farm1, 'accel cc main.c');
  const farm2 = await cc(['/showIncludes', ...two('f2.obj')]);
  ok(farm2, 'accel cc two.c');
  const stats = await ccStats(dev);
  assert.equal(stats['farm compiled'], 2, JSON.stringify(stats));
  const obj = (name: string) => readFileSync(join(src, 'out', name));
  assert.deepEqual(obj('f1.obj'), obj('p1.obj'), "main.c's object is clang-cl's own");
  assert.deepEqual(obj('f2.obj'), obj('p2.obj'), "two.c's object is clang-cl's own");
  assert.ok(obj('f1.obj').includes(`${src}/inc/a.h`), '__FILE__ names the client’s header path');
  assert.equal(farm1.stdout.toString(), local1.stdout.toString(), 'no header lines the build did not ask for');
  assert.match(farm1.stderr, /warning: hi/);
  assert.equal(farm2.stdout.toString(), `Note: including file: ${src}/inc/a.h\n`, 'the worker’s paths mapped back');
  assert.equal(farm2.stdout.toString(), local2.stdout.toString());

  // Debug information names the object's path and the command line: compiled here, and said why.
  const debug = await cc(one('d.obj', '/Z7'));
  ok(debug, 'accel cc /Z7');
  assert.match(debug.stderr, /compiling locally, the farm could not take this compile \(refused argument \/Z7\)/);
  const after = await ccStats(dev);
  assert.equal(after['farm compiled'], 2);
  assert.equal(after['farm fallback: refused argument /Z7'], 1, JSON.stringify(after));
});
