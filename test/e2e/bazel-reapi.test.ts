// Debian's Bazel 4 as a Remote Execution API client of the syncer: gcc genrules built on accel's workers over
// grpcs with client certificates, then from the remote cache, then with --remote_cache alone; refused without
// a certificate, and refused when a genrule's command is anything but a compiler call.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { MtlsClient } from '../../src/net/client.ts';
import { loadIdentity } from '../../src/net/tls-identity.ts';
import { farmConfigBazel } from '../bazel-fixture.ts';
import { bazelBuild, needsTools, ok, type RunResult, tempDir } from '../helpers.ts';
import { farmCerts, farmStatus, type Proc, reapiPort, startSyncer, startWorker } from '../integration/farm-harness.ts';

const BAZEL_TIMEOUT_SECONDS = 300;

const BUILD = `
genrule(name = "greet_o", srcs = ["greet.c", "greet.h"], outs = ["greet.o"], cmd = "gcc -O2 -c $(location greet.c) -o $@")
genrule(name = "hello_o", srcs = ["hello.c", "greet.h"], outs = ["hello.o"], cmd = "gcc -O2 -Wall -c $(location hello.c) -o $@")
genrule(
    name = "hello",
    srcs = [":hello_o", ":greet_o"],
    outs = ["hello_bin"],
    cmd = "gcc -o $@ $(location :hello_o) $(location :greet_o)",
    executable = True,
)
`;

function workspace(dir: string, greeting: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'WORKSPACE'), '');
  writeFileSync(join(dir, 'BUILD'), BUILD);
  writeFileSync(join(dir, 'greet.h'), 'const char *greeting(void);\n');
  writeFileSync(join(dir, 'greet.c'), `#include "greet.h"\nconst char *greeting(void) { return "${greeting}"; }\n`);
  writeFileSync(
    join(dir, 'hello.c'),
    '#include <stdio.h>\n#include "greet.h"\nint main(void) { puts(greeting()); return 0; }\n',
  );
  return dir;
}

/** `bazel --batch build //:hello` with a fresh output root (nothing cached locally), plus `flags`. */
async function bazel(t: TestContext, ws: string, label: string, flags: string[] = []): Promise<RunResult> {
  return bazelBuild(t, ws, { target: '//:hello', label, flags, timeoutSeconds: BAZEL_TIMEOUT_SECONDS });
}

function outputs(ws: string): Record<string, Buffer> {
  return Object.fromEntries(
    ['hello.o', 'greet.o', 'hello_bin'].map((f) => [f, readFileSync(join(ws, 'bazel-bin', f))] as const),
  );
}

async function jobsSubmitted(home: string, syncer: Proc): Promise<number> {
  const client = new MtlsClient(syncer.url, loadIdentity(home));
  try {
    const { value } = await client.json<{ queue: { submitted: number } }>('GET', '/status');
    return value.queue.submitted;
  } finally {
    client.close();
  }
}

test('Bazel 4 runs gcc genrules on the farm over REAPI with client certificates; a clean rebuild is all remote cache hits; --remote_cache alone works; no certificate or a shell command is refused', {
  ...needsTools('bazel', 'gcc'),
  timeout: 900_000,
}, async (t) => {
  const dir = tempDir(t, 'accel-reapi-bazel-');
  const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', dev: 'client' });
  const syncer = await startSyncer(t, homes.syncer as string, []);
  const port = await reapiPort(syncer);
  await startWorker(t, homes.w1 as string, syncer.url, 2);
  const endpoint = `grpcs://127.0.0.1:${port}`;

  // The reference: the same workspace built locally, without any farm.
  // The worker's first poll reports its cores, which `farm config bazel` sizes --jobs by.
  while ((await farmStatus(homes.dev as string, syncer.url)).cores < 2) await new Promise((r) => setTimeout(r, 200));

  const local = workspace(join(dir, 'local'), 'hello from the farm');
  ok(await bazel(t, local, 'local'), 'local bazel build');
  const expected = outputs(local);

  const ws = workspace(join(dir, 'ws'), 'hello from the farm');
  await farmConfigBazel(homes.dev as string, endpoint, ws, ['--syncer', syncer.url]);
  const rc = readFileSync(join(ws, '.bazelrc'), 'utf8');
  assert.match(rc, /^build --remote_executor=grpcs:\/\/127\.0\.0\.1:\d+$/m);
  assert.match(rc, /^build --tls_client_key=.*identity\.pk8\.key$/m);
  // Sized and set for the syncer's policy (compilers: test runs stay local, the rest falls back when refused).
  // One worker with 2 slots: --jobs is the farm's cores plus this machine's CPUs.
  assert.match(rc, new RegExp(`^build --jobs=${2 + availableParallelism()}$`, 'm'));
  assert.match(rc, /^build --spawn_strategy=remote,local$/m);
  assert.match(rc, /^build --remote_local_fallback$/m);
  assert.match(rc, /^build --strategy=TestRunner=local$/m);

  const remote = await bazel(t, ws, 'remote execution');
  ok(remote, 'bazel build on the farm');
  assert.match(remote.stderr, /3 remote\b/, remote.stderr);
  assert.deepEqual(outputs(ws), expected, 'objects and program equal the local build’s');
  assert.equal(spawnSync(join(ws, 'bazel-bin', 'hello_bin'), { encoding: 'utf8' }).stdout, 'hello from the farm\n');
  assert.equal(await jobsSubmitted(homes.dev as string, syncer), 3, 'three actions ran on the worker');

  // A clean output base: every action is a remote cache hit; nothing runs on a worker.
  const again = await bazel(t, ws, 'clean rebuild');
  ok(again, 'clean rebuild');
  assert.match(again.stderr, /3 remote cache hit/, again.stderr);
  assert.deepEqual(outputs(ws), expected);
  assert.equal(await jobsSubmitted(homes.dev as string, syncer), 3, 'no new jobs for a cached build');

  // --remote_cache alone: a changed source builds locally and uploads; a clean rebuild then hits.
  const cacheOnly = workspace(join(dir, 'cache-only'), 'hello from the cache');
  await farmConfigBazel(homes.dev as string, endpoint, cacheOnly, ['--cache-only']);
  assert.match(readFileSync(join(cacheOnly, '.bazelrc'), 'utf8'), /^build --remote_cache=grpcs:/m);
  const uploaded = await bazel(t, cacheOnly, 'remote cache, first');
  ok(uploaded, 'remote-cache build');
  // greet.o differs (new string): built here and uploaded; hello.o is the farm's earlier result.
  assert.match(uploaded.stderr, /1 remote cache hit/, uploaded.stderr);
  const hit = await bazel(t, cacheOnly, 'remote cache, clean');
  ok(hit, 'remote-cache rebuild');
  assert.match(hit.stderr, /3 remote cache hit/, hit.stderr);
  assert.equal(
    spawnSync(join(cacheOnly, 'bazel-bin', 'hello_bin'), { encoding: 'utf8' }).stdout,
    'hello from the cache\n',
  );
  assert.equal(await jobsSubmitted(homes.dev as string, syncer), 3, '--remote_cache runs nothing on workers');

  // No client certificate: the TLS handshake is refused and the build fails.
  const bare = workspace(join(dir, 'bare'), 'hello from nobody');
  const caOnly = rc.split('\n').filter((l) => /^startup|--tls_certificate=/.test(l));
  writeFileSync(join(bare, '.bazelrc'), `${caOnly.join('\n')}\nbuild --remote_executor=${endpoint}\n`);
  const refused = await bazel(t, bare, 'no certificate');
  assert.notEqual(refused.code, 0, 'a client without a certificate must not build');
  assert.doesNotMatch(refused.stderr, /Build completed successfully/);

  // The attack: a genrule whose command is a shell script, not a compiler call. It must never run.
  const evil = workspace(join(dir, 'evil'), 'x');
  cpSync(join(ws, '.bazelrc'), join(evil, '.bazelrc'));
  const marker = join(dir, 'pwned');
  writeFileSync(
    join(evil, 'BUILD'),
    `genrule(name = "hello", outs = ["hello_bin"], cmd = "touch ${marker}; id > $@")\n`,
  );
  // Remote only: with the .bazelrc's --remote_local_fallback the genrule would run here, on the user's own machine.
  const attack = await bazel(t, evil, 'shell genrule', ['--spawn_strategy=remote', '--noremote_local_fallback']);
  assert.notEqual(attack.code, 0);
  assert.match(attack.stderr, /ACCEL_REAPI_COMMAND_REFUSED/, attack.stderr);
  assert.throws(() => readFileSync(marker), /ENOENT/, 'the command did not run anywhere');
  assert.equal(await jobsSubmitted(homes.dev as string, syncer), 3, 'the refused action never reached a worker');
});
