// `accel conda build` with a farm: the build scripts' cache misses go to the syncer, and the farm's toolchain
// identity covers cross compilers, so only a worker that has the same aarch64-linux-gnu-gcc receives them.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAccel, tempDir, testNeeding } from '../helpers.ts';
import { CROSS_BUILD_TOOLS, okJson, statuses } from './conda-build-harness.ts';
import { ccStats, farmCerts, farmStatus, startSyncer, startWorker } from './farm-harness.ts';

/** Every test here runs the cross toolchain, gcc, bwrap: without them it skips, naming them. */
const test = testNeeding(...CROSS_BUILD_TOOLS, 'gcc', 'bwrap');

/** A recipe that compiles `n` C files one by one with $CC -c (cacheable, so farmable) and links a library. */
function feedstock(root: string, name: string, n: number): string {
  const dir = join(root, `${name}-feedstock`, 'recipe');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'meta.yaml'),
    `package: {name: ${name}, version: "1.0"}\nrequirements:\n  build: ['{{ compiler("c") }}', '{{ stdlib("c") }}']\n`,
  );
  const files = Array.from({ length: n }, (_, i) => `${name}${i}`);
  writeFileSync(
    join(dir, 'build.sh'),
    [
      ...files.map((f, i) => `printf 'int ${f}(int x) { return x * ${i + 2} + ${name.length}; }\\n' > ${f}.c`),
      ...files.map((f) => `$CC $CFLAGS -c ${f}.c -o ${f}.o`),
      `mkdir -p "$PREFIX/lib" && $CC -shared $LDFLAGS -o "$PREFIX/lib/lib${name}.so" *.o`,
      '',
    ].join('\n'),
  );
  return join(root, `${name}-feedstock`);
}

test('conda build with a farm: cross compiles run on the worker that has the cross compiler, never on one without it', async (t) => {
  const dir = tempDir(t, 'accel-conda-farm-');
  const tmp = join(dir, 'tmp');
  mkdirSync(join(tmp, 'accel-conda-bld'), { recursive: true });
  const homes = await farmCerts(dir, { syncer: 'syncer', cross: 'worker', plain: 'worker', dev: 'client' });
  writeFileSync(
    join(homes.cross as string, 'config.json'),
    JSON.stringify({ farm: { compilers: ['aarch64-linux-gnu-gcc'] } }),
  );
  writeFileSync(join(homes.plain as string, 'config.json'), JSON.stringify({ farm: { compilers: ['gcc'] } }));
  // The syncer ships the build directories (sources and the host prefix's headers) to its workers.
  const syncer = await startSyncer(t, homes.syncer as string, [join(tmp, 'accel-conda-bld')]);
  const plain = await startWorker(t, homes.plain as string, syncer.url, 2);
  const dev = homes.dev as string;
  // A short wait for a worker while none can take the job; the cc daemon reads it when the build starts it.
  let env: NodeJS.ProcessEnv = { TMPDIR: tmp, ACCEL_FARM_SYNCER: syncer.url, ACCEL_FARM_START_TIMEOUT: '2' };
  const build = (feedstockDir: string) =>
    runAccel(
      [
        '--home',
        dev,
        '--json',
        'conda',
        'build',
        feedstockDir,
        '--target-platform',
        'linux-aarch64',
        '--channel',
        join(dir, 'channel'),
        '--test',
        'skip',
      ],
      { env },
    );
  const src = join(dir, 'feedstocks');

  // Only a gcc worker: it never receives an aarch64 compile; they wait, then compile here.
  const alone = okJson(await build(feedstock(src, 'crossa', 3)));
  assert.deepEqual(statuses(alone), { crossa: 'built' });
  let stats = await ccStats(dev);
  assert.equal(stats['farm compiled'] ?? 0, 0, JSON.stringify(stats));
  assert.ok(
    Object.keys(stats).some((k) => k.startsWith('farm fallback')),
    JSON.stringify(stats),
  );

  const cross = await startWorker(t, homes.cross as string, syncer.url, 2);
  // Now a worker can: wait as long as it takes it to poll (a new daemon, with the longer wait).
  const stopped = await runAccel(['--home', dev, 'cc', 'daemon', '--stop']);
  assert.equal(stopped.code, 0, stopped.stderr.toString());
  env = { ...env, ACCEL_FARM_START_TIMEOUT: '30' };
  const farmed = okJson(await build(feedstock(src, 'crossb', 4)));
  assert.deepEqual(statuses(farmed), { crossb: 'built' });
  stats = await ccStats(dev);
  assert.equal(stats['farm compiled'], 4, `${JSON.stringify(stats)}\n${cross.stderr()}\n${syncer.stderr()}`);
  const status = await farmStatus(dev, syncer.url);
  const done = Object.fromEntries(status.workers.map((w: { name: string; done: number }) => [w.name, w.done]));
  assert.equal(done.plain, 0, JSON.stringify(status.workers));
  assert.equal(done.cross, 4, JSON.stringify(status.workers));
  await Promise.all([plain.stop(), cross.stop()]);
  await syncer.stop();
});
