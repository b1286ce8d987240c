// Debian's Bazel 4 building a C++ workspace with its own C/C++ rules (cc_library, a shared library, cc_binary,
// cc_test) on accel's workers over REAPI: with --spawn_strategy=remote and no fallback every action runs remote
// (compiles, archives, links) and the outputs equal a local build's byte for byte; `bazel test` runs the test
// remote under --reapi-run any, and under the default `compilers` the test action is refused (naming its first
// word, in ASCII) and Bazel's --remote_local_fallback runs it here.
// Offline: rules_cc and remote_coverage_tools, which Bazel 4 would download, are local repositories.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { bazel4Repositories, farmConfigBazel, processCounts, processSummary } from '../bazel-fixture.ts';
import { needsTools, ok, type RunResult, runCommand, tempDir } from '../helpers.ts';
import { farmCerts, reapiPort, startSyncer, startWorker } from '../integration/farm-harness.ts';

const BAZEL_TIMEOUT_SECONDS = 400;

const BUILD = `
load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")

cc_library(name = "greet", srcs = ["greet.cc"], hdrs = ["greet.h"])
cc_binary(name = "libgreet_shared.so", srcs = ["greet.cc", "greet.h"], linkshared = 1)
cc_binary(name = "hello", srcs = ["hello.cc"], deps = [":greet"])
cc_test(name = "hello_test", srcs = ["hello_test.cc"], deps = [":greet"])
`;

/** Outputs compared with the local build's: the archive, both shared libraries, the program and the test. */
const OUTPUTS = ['libgreet.a', 'libgreet.so', 'libgreet_shared.so', 'hello', 'hello_test'];

function workspace(dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'WORKSPACE'), '');
  writeFileSync(join(dir, 'BUILD'), BUILD);
  writeFileSync(
    join(dir, 'greet.h'),
    '#pragma once\n#include <string>\nstd::string greeting(const std::string &who);\n',
  );
  writeFileSync(
    join(dir, 'greet.cc'),
    '#include "greet.h"\nstd::string greeting(const std::string &who) { return "hello, " + who; }\n',
  );
  writeFileSync(
    join(dir, 'hello.cc'),
    '#include <cstdio>\n#include "greet.h"\nint main() { std::puts(greeting("farm").c_str()); return 0; }\n',
  );
  writeFileSync(
    join(dir, 'hello_test.cc'),
    '#include "greet.h"\nint main() { return greeting("test") == "hello, test" ? 0 : 1; }\n',
  );
  return dir;
}

/** One Bazel server per workspace for the whole file (its JVM starts once), gone when the test ends. */
function bazelIn(t: TestContext, dir: string, ws: string, common: string[]) {
  const root = join(dir, 'bazel-root');
  const home = join(dir, 'bazel-home');
  mkdirSync(home, { recursive: true });
  const startup = [`--output_user_root=${root}`, '--max_idle_secs=300'];
  t.after(() => {
    spawnSync('bazel', [...startup, 'shutdown'], { cwd: ws, env: { ...process.env, HOME: home }, timeout: 60_000 });
    spawnSync('chmod', ['-R', 'u+w', root]);
  });
  return async (label: string, args: string[]): Promise<RunResult> => {
    const [command, ...rest] = args;
    const r = await runCommand('bazel', [...startup, command as string, ...common, ...rest], {
      cwd: ws,
      env: { HOME: home },
      wrapper: ['timeout', String(BAZEL_TIMEOUT_SECONDS)],
    });
    t.diagnostic(`${label}: bazel exit ${r.code}; ${processSummary(r.stderr)}`);
    return r;
  };
}

function outputs(ws: string): Record<string, Buffer> {
  return Object.fromEntries(OUTPUTS.map((f) => [f, readFileSync(join(ws, 'bazel-bin', f))] as const));
}

test('Bazel 4 C++ rules on the farm: every action remote (compile, ar, link, .so), outputs equal local; bazel test remote under any, refused and run locally under compilers', {
  ...needsTools('bazel', 'gcc', 'bwrap'),
  timeout: 1_200_000,
}, async (t) => {
  const dir = tempDir(t, 'accel-bazel-cc-');
  const homes = await farmCerts(dir, {
    strict: 'syncer',
    open: 'syncer',
    w1: 'worker',
    w2: 'worker',
    dev: 'client',
  });
  const strict = await startSyncer(t, homes.strict as string, []);
  const open = await startSyncer(t, homes.open as string, [], { ACCEL_FARM_REAPI_RUN: 'any' });
  await startWorker(t, homes.w1 as string, strict.url, 2);
  await startWorker(t, homes.w2 as string, open.url, 2);
  const strictEndpoint = `grpcs://127.0.0.1:${await reapiPort(strict)}`;
  const openEndpoint = `grpcs://127.0.0.1:${await reapiPort(open)}`;

  const ws = workspace(join(dir, 'ws'));
  await farmConfigBazel(homes.dev as string, strictEndpoint, ws);
  // The .bazelrc's remote_executor is for the strict syncer; the open one is named on the command line.
  const bazel = bazelIn(t, dir, ws, bazel4Repositories(dir));
  const remoteOnly = ['--spawn_strategy=remote', '--genrule_strategy=remote', '--noremote_local_fallback'];

  // The reference: everything built here, no remote (the .bazelrc's executor overridden away).
  const local = await bazel('local', ['build', '//...', '--remote_executor=', '--spawn_strategy=local']);
  ok(local, 'local build');
  const expected = outputs(ws);
  assert.equal(spawnSync(join(ws, 'bazel-bin', 'hello'), { encoding: 'utf8' }).stdout, 'hello, farm\n');
  ok(await bazel('clean', ['clean']));

  // compilers (the default): every compile, archive and link of the build runs on the worker, no fallback.
  const remote = await bazel('remote, compilers', ['build', '//...', ...remoteOnly]);
  ok(remote, 'remote build');
  const counts = processCounts(remote.stderr);
  assert.ok((counts.remote ?? 0) >= 8, `compiles, archive and links remote: ${processSummary(remote.stderr)}`);
  assert.deepEqual(
    Object.keys(counts).filter((k) => k !== 'remote' && k !== 'internal'),
    [],
    `nothing ran anywhere but remote: ${processSummary(remote.stderr)}`,
  );
  assert.deepEqual(outputs(ws), expected, 'archive, shared libraries, program and test binary equal the local build');

  // compilers: the test action is refused, PERMISSION_DENIED naming its first word, in ASCII (the .bazelrc
  // runs tests here without asking, TestRunner=local: asked here, remote only, so the refusal shows) ...
  const refused = await bazel('test, compilers, remote only', [
    'test',
    '//:hello_test',
    '--strategy=TestRunner=remote',
    '--noremote_local_fallback',
  ]);
  assert.notEqual(refused.code, 0, 'the syncer does not run test runners under compilers');
  const refusal = /ACCEL_REAPI_COMMAND_REFUSED: [^\n]*/.exec(refused.stderr)?.[0] ?? '';
  assert.match(refusal, /'external\/bazel_tools\/tools\/test\/test-setup\.sh'/, refused.stderr);
  assert.match(refusal, /^[\x20-\x7e]*$/, 'the refusal reaches Bazel as ASCII');
  // ... and with --remote_local_fallback the same refusal makes Bazel run the test here.
  const fallback = await bazel('test, compilers, fallback', [
    'test',
    '//:hello_test',
    '--strategy=TestRunner=remote,local',
    '--remote_local_fallback',
    '--test_output=errors',
  ]);
  ok(fallback, 'bazel test with local fallback');
  assert.match(fallback.stdout + fallback.stderr, /PASSED/);
  assert.ok((processCounts(fallback.stderr).local ?? 0) >= 1, processSummary(fallback.stderr));

  // any: the same test runs on the worker (in its sandbox), no fallback.
  ok(await bazel('clean', ['clean']));
  const anyRun = await bazel('test, any', [
    'test',
    '//:hello_test',
    `--remote_executor=${openEndpoint}`,
    ...remoteOnly,
    '--strategy=TestRunner=remote',
    '--test_output=errors',
  ]);
  ok(anyRun, 'bazel test, every action remote');
  assert.match(anyRun.stdout + anyRun.stderr, /PASSED/);
  const anyCounts = processCounts(anyRun.stderr);
  assert.deepEqual(
    Object.keys(anyCounts).filter((k) => k !== 'remote' && k !== 'internal'),
    [],
    processSummary(anyRun.stderr),
  );
});
