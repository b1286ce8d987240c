// Debian's Bazel 4 with the mirror's gRPC port as its remote downloader and remote cache: http_archive and
// http_file deps from a local upstream on loopback; then the upstream gone, the mirror offline and a clean
// output base: the build succeeds from the store, its outputs remote cache hits; a checksum mismatch fails
// naming the URL; a URL the mirror does not allow fails with the mirror's reason.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { bazelGrpcLines } from '../../src/mirror/bazel-grpc-config.ts';
import { startFakeUpstream } from '../fake-upstream.ts';
import { bazelBuild, needsTools, type RunResult, sha256, tempDir } from '../helpers.ts';
import { startTestMirror, TEST_CACHE_TOKEN } from '../mirror-harness.ts';

const BAZEL_TIMEOUT_SECONDS = 300;

/** A workspace whose deps come from `origin`: one http_archive, one http_file, and a genrule using both. */
function workspace(dir: string, origin: string, archiveSha: string, fileSha: string, extra = ''): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'WORKSPACE'),
    `load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive", "http_file")
http_archive(
    name = "greeting",
    urls = ["http://${origin}/greeting-1.0.tar.gz"],
    sha256 = "${archiveSha}",
    strip_prefix = "greeting-1.0",
    build_file_content = 'exports_files(["hello.txt"])',
)
http_file(
    name = "words",
    urls = ["http://${origin}/words.txt"],
    sha256 = "${fileSha}",
)
${extra}`,
  );
  writeFileSync(
    join(dir, 'BUILD'),
    'genrule(name = "out", srcs = ["@greeting//:hello.txt", "@words//file"], outs = ["out.txt"], cmd = "cat $(SRCS) > $@")\n',
  );
  return dir;
}

async function bazel(t: TestContext, ws: string, label: string, flags: string[]): Promise<RunResult> {
  return bazelBuild(t, ws, { target: '//:out', label, flags, timeoutSeconds: BAZEL_TIMEOUT_SECONDS });
}

/** `--flag=value` words of the .bazelrc lines `accel mirror config bazel --grpc` prints. */
function flagsFor(port: number): string[] {
  return bazelGrpcLines(`grpc://127.0.0.1:${port}`, TEST_CACHE_TOKEN).map((l) => l.replace(/^build /, ''));
}

test('Bazel 4 fetches http_archive and http_file through the mirror’s remote downloader, then builds offline from the store with remote cache hits; a mismatch or a refused URL fails naming it', {
  ...needsTools('bazel', 'tar'),
  timeout: 900_000,
}, async (t) => {
  const dir = tempDir(t, 'accel-downloader-');
  const up = await startFakeUpstream();
  t.after(() => up.close());
  mkdirSync(join(dir, 'src', 'greeting-1.0'), { recursive: true });
  writeFileSync(join(dir, 'src', 'greeting-1.0', 'hello.txt'), 'hello from an archive\n');
  const tar = spawnSync('tar', [
    '--sort=name',
    '--mtime=@0',
    '-czf',
    join(dir, 'g.tgz'),
    '-C',
    join(dir, 'src'),
    'greeting-1.0',
  ]);
  assert.equal(tar.status, 0, String(tar.stderr));
  const archive = readFileSync(join(dir, 'g.tgz'));
  const words = Buffer.from('and a file\n');
  up.files.set('/greeting-1.0.tar.gz', { body: archive });
  up.files.set('/words.txt', { body: words });

  const home = join(dir, 'home');
  const online = await startTestMirror(t, { home, grpcPort: 0, allow: [up.origin] });
  const ws = workspace(join(dir, 'ws'), up.origin, sha256(archive), sha256(words));
  const first = await bazel(t, ws, 'online', flagsFor(online.server.grpcPort() as number));
  assert.equal(first.code, 0, first.stderr);
  assert.equal(up.count('/greeting-1.0.tar.gz'), 1);
  assert.equal(up.count('/words.txt'), 1);

  // A checksum that does not match: the build fails naming the URL.
  const bad = workspace(join(dir, 'bad'), up.origin, sha256('not the archive'), sha256(words));
  const mismatch = await bazel(t, bad, 'mismatch', flagsFor(online.server.grpcPort() as number));
  assert.notEqual(mismatch.code, 0);
  assert.match(mismatch.stderr, /greeting-1\.0\.tar\.gz/, mismatch.stderr);
  assert.match(mismatch.stderr, /ACCEL_STORE_DIGEST_MISMATCH|does not match|[Cc]hecksum/, mismatch.stderr);

  // A URL on loopback the mirror does not allow: refused with the mirror's reason.
  // (Pinned content the store holds would be served whatever the URL, so this pin names bytes it lacks.)
  const refusedWs = workspace(join(dir, 'refused'), '127.0.0.1:9', sha256('an archive never fetched'), sha256(words));
  const refused = await bazel(t, refusedWs, 'refused', flagsFor(online.server.grpcPort() as number));
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /ACCEL_FETCH_REFUSED/, refused.stderr);
  await online.close();
  await up.close();
  const requests = up.requests.length;

  // Upstream gone, mirror offline, a clean output base: everything from the store; the genrule a cache hit.
  const offline = await startTestMirror(t, { home, grpcPort: 0, offline: true });
  const again = await bazel(t, ws, 'offline, clean', flagsFor(offline.server.grpcPort() as number));
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /1 remote cache hit/, again.stderr);
  assert.equal(up.requests.length, requests);
});
