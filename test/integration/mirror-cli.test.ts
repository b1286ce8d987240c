import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { initCa, issueCert } from '../../src/net/tls.ts';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream.ts';
import { needsTools, runAccel, runCommand, sha256, tempDir } from '../helpers.ts';
import { serveCli } from '../mirror-harness.ts';

async function upstream(t: import('node:test').TestContext): Promise<FakeUpstream> {
  const up = await startFakeUpstream();
  t.after(() => up.close());
  return up;
}

const serve = serveCli;

/** The real curl; headers go to a file (curl crashes writing them to /dev/stderr when that is a socket). */
async function curl(url: string, extra: string[] = []) {
  const headerFile = join(mkdtempSync(join(tmpdir(), 'accel-curl-')), 'headers');
  const r = await runCommand('curl', ['-sS', '-f', '-D', headerFile, ...extra, url]);
  const headers = readFileSync(headerFile, 'utf8');
  rmSync(join(headerFile, '..'), { recursive: true });
  return { code: r.code, body: r.stdout, headers: `${headers}${r.stderr}` };
}

test(
  'prefetch a URL list (one failure listed, exit 1), then serve it offline to curl',
  needsTools('curl'),
  async (t) => {
    const up = await upstream(t);
    const a = randomBytes(50_000);
    const b = randomBytes(70_000);
    up.files.set('/dl/a-1.0.tar.gz', { body: a });
    up.files.set('/dl/b.bin', { body: b });
    const home = tempDir(t);
    const list = join(tempDir(t), 'urls.txt');
    writeFileSync(
      list,
      [
        '# what the build needs',
        `http://${up.origin}/dl/a-1.0.tar.gz ${sha256(a)}`,
        `http://${up.origin}/dl/b.bin`,
        `http://${up.origin}/dl/missing-2.0.tar.gz`,
      ].join('\n'),
    );
    const r = await runAccel(['--home', home, 'mirror', 'prefetch', list, '--allow', up.origin]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout.toString(), /failed {2}http:\/\/.*missing-2\.0\.tar\.gz .*404/);
    assert.match(r.stdout.toString(), /prefetched 2 files .* 0 already cached, 1 failed/);
    const again = await runAccel(['--home', home, 'mirror', 'prefetch', list, '--allow', up.origin]);
    assert.match(again.stdout.toString(), /prefetched 0 files .* 2 already cached, 1 failed/);
    const requestsBefore = up.requests.length;

    const m = await serve(t, home, ['--offline']);
    const got = await curl(`${m.base}/http/${up.origin}/dl/a-1.0.tar.gz`);
    assert.equal(got.code, 0);
    assert.equal(sha256(got.body), sha256(a));
    assert.match(got.headers, /x-accel-cache: HIT/i);
    assert.equal(sha256((await curl(`${m.base}/http/${up.origin}/dl/b.bin`)).body), sha256(b));
    const miss = await curl(`${m.base}/http/${up.origin}/dl/missing-2.0.tar.gz`);
    assert.equal(miss.code, 22, 'curl -f fails on the 504');
    assert.match(miss.headers, /HTTP\/1\.1 504/);
    assert.equal(up.requests.length, requestsBefore, 'offline: the upstream saw nothing');
  },
);

test(
  'import a Bazel repository cache, map it with a WORKSPACE, and serve it offline',
  needsTools('curl'),
  async (t) => {
    const home = tempDir(t);
    const dir = tempDir(t);
    const tarball = randomBytes(30_000);
    const hex = sha256(tarball);
    const cache = join(dir, 'repo-cache', 'content_addressable', 'sha256', hex);
    mkdirSync(cache, { recursive: true });
    writeFileSync(join(cache, 'file'), tarball);
    const workspace = join(dir, 'WORKSPACE');
    writeFileSync(
      workspace,
      `load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
http_archive(
    name = "rules_x",
    sha256 = "${hex}",
    strip_prefix = "rules_x-1.2.3",
    urls = ["https://github.com/example/rules_x/archive/v1.2.3.tar.gz"],
)
`,
    );
    const imported = await runAccel(['--home', home, 'mirror', 'import', join(dir, 'repo-cache'), '--urls', workspace]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout.toString(), /imported 1 files \(1 with URLs\), 0 failed/);
    const m = await serve(t, home, ['--offline']);
    const got = await curl(`${m.base}/https/github.com/example/rules_x/archive/v1.2.3.tar.gz`);
    assert.equal(got.code, 0, got.headers);
    assert.equal(sha256(got.body), hex);
  },
);

test('serve: a non-loopback bind without a token warns; SIGTERM stops it cleanly', needsTools('curl'), async (t) => {
  const home = tempDir(t);
  const m = await serve(t, home, ['--bind', '0.0.0.0']);
  assert.match(m.stderr(), /warning: listening on 0\.0\.0\.0 without --token/);
  const status = await curl(`${m.base.replace('0.0.0.0', '127.0.0.1')}/_accel/status.json`);
  assert.equal(JSON.parse(status.body.toString()).offline, false);
  m.child.kill('SIGTERM');
  assert.equal(await m.exited, 0);
});

test('mirror config: bazel --write is idempotent; pip uses the given upstream; an unknown tool is a usage error', async (t) => {
  const home = tempDir(t);
  const workspace = tempDir(t);
  for (let i = 0; i < 2; i++) {
    const r = await runAccel([
      '--home',
      home,
      'mirror',
      'config',
      'bazel',
      '--write',
      workspace,
      '--url',
      'http://127.0.0.1:8123',
    ]);
    assert.equal(r.code, 0, r.stderr);
  }
  const cfg = readFileSync(join(workspace, 'accel-downloader.cfg'), 'utf8');
  assert.match(cfg, /^rewrite \(\.\*\) http:\/\/127\.0\.0\.1:8123\/https\/\$1$/m);
  const rc = readFileSync(join(workspace, '.bazelrc'), 'utf8');
  assert.equal(rc.match(/--experimental_downloader_config=/g)?.length, 1);
  const pip = await runAccel([
    '--home',
    home,
    'mirror',
    'config',
    'pip',
    '--upstream',
    'https://pkgs.example.invalid/simple/',
  ]);
  assert.match(
    pip.stdout.toString(),
    /^index-url = http:\/\/127\.0\.0\.1:8000\/https\/pkgs\.example\.invalid\/simple\/$/m,
  );
  const bad = await runAccel(['--home', home, 'mirror', 'config', 'gradle']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /ACCEL_USAGE_BAD_TOOL/);
});

test("mirror config apt: deb822 sources through the mirror and remaps from the machine's apt sources", async (t) => {
  const home = tempDir(t);
  const etc = tempDir(t);
  mkdirSync(join(etc, 'sources.list.d'));
  writeFileSync(
    join(etc, 'sources.list'),
    'deb [signed-by=/k.gpg] http://archive.example.invalid/debian bookworm main contrib\n',
  );
  writeFileSync(
    join(etc, 'sources.list.d', 'sec.sources'),
    'Types: deb\nURIs: http://security.example.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n',
  );
  const r = await runAccel(['--home', home, '--json', 'mirror', 'config', 'apt', '--url', 'http://127.0.0.1:8100'], {
    env: { ACCEL_APT_ETC: etc },
  });
  assert.equal(r.code, 0, r.stderr);
  const config = JSON.parse(r.stdout.toString());
  assert.deepEqual(config.remaps, {
    debian: ['http://archive.example.invalid/debian'],
    'debian-security': ['http://security.example.invalid/debian-security'],
  });
  assert.match(config.sources, /^URIs: http:\/\/127\.0\.0\.1:8100\/r\/debian$/m);
  assert.match(config.sources, /^Suites: bookworm$/m);
  assert.match(config.sources, /^Components: main contrib$/m);
  assert.match(config.sources, /^Signed-By: \/k\.gpg$/m);
});

test('an https upstream that redirects to plain http is refused, unless the content is pinned by its digest', async (t) => {
  const dir = tempDir(t);
  // A CA of our own for the https upstream, trusted by the mirror process only (NODE_EXTRA_CA_CERTS).
  const ca = join(dir, 'ca');
  await initCa(ca);
  const leaf = await issueCert(ca, { name: 'upstream', role: 'syncer' });
  const body = Buffer.from('archive bytes\n');
  let plainRequests = 0;
  const plain = createHttpServer((_req, res) => {
    plainRequests++;
    res.end(body);
  });
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  t.after(() => plain.close());
  const plainOrigin = `127.0.0.1:${(plain.address() as AddressInfo).port}`;
  const secure = createHttpsServer(
    { cert: readFileSync(leaf.file), key: readFileSync(leaf.file.replace(/\.crt$/, '.key')) },
    (req, res) => res.writeHead(302, { location: `http://${plainOrigin}${req.url}` }).end(),
  );
  await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
  t.after(() => secure.close());
  const secureOrigin = `127.0.0.1:${(secure.address() as AddressInfo).port}`;
  const m = await serveCli(t, join(dir, 'home'), ['--allow', `${secureOrigin},${plainOrigin}`], {
    NODE_EXTRA_CA_CERTS: join(ca, 'certs', 'ca.crt'),
  });

  const downgraded = await fetch(`${m.base}/https/${secureOrigin}/dl/tool-1.0.tar.gz`);
  assert.equal(downgraded.status, 403);
  const why = await downgraded.text();
  assert.match(why, /redirects to plain http .*refused/, why);
  assert.equal(plainRequests, 0, 'the plain-http host was never asked');
  const pinned = await fetch(`${m.base}/https/${secureOrigin}/dl/tool-1.0.tar.gz?sha256=${sha256(body)}`);
  assert.equal(pinned.status, 200, await pinned.clone().text());
  assert.deepEqual(Buffer.from(await pinned.arrayBuffer()), body);
});
