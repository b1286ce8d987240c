// A real Bazel builds examples/bazel-workspace, whose http_archive lives on github.com, from the accel mirror alone.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { needsTools, ok, ROOT, type RunResult, runAccel, runCommand, sha256, tempDir } from '../helpers.ts';
import { serveCli } from '../mirror-harness.ts';

const EXAMPLE = join(ROOT, 'examples', 'bazel-workspace');
const ARCHIVE_URL = 'https://github.com/accel-example/hello/archive/refs/tags/v1.0.0.tar.gz';
/** Bazel 4 starts a JVM per --batch command; a hung download must fail the test, not stall the suite. */
const BAZEL_TIMEOUT_SECONDS = 300;

/** Packs upstream/hello-1.0.0 the way the README does: same bytes on every run, so the sha256 is stable. */
async function packHello(dir: string): Promise<Buffer> {
  const tar = join(dir, 'hello-1.0.0.tar');
  ok(
    await runCommand('tar', [
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--mode=u=rwX,go=rX',
      '--format=ustar',
      '-C',
      join(EXAMPLE, 'upstream'),
      '-cf',
      tar,
      'hello-1.0.0',
    ]),
    'tar',
  );
  ok(await runCommand('gzip', ['-n', tar]), 'gzip');
  return readFileSync(`${tar}.gz`);
}

/** A copy of the example workspace with the tarball's sha256 filled in. */
function workspaceCopy(dir: string, hex: string): string {
  const workspace = join(dir, 'workspace');
  mkdirSync(workspace);
  const template = readFileSync(join(EXAMPLE, 'WORKSPACE.template'), 'utf8');
  assert.match(template, /@HELLO_SHA256@/);
  writeFileSync(join(workspace, 'WORKSPACE'), template.replaceAll('@HELLO_SHA256@', hex));
  copyFileSync(join(EXAMPLE, 'BUILD.bazel'), join(workspace, 'BUILD.bazel'));
  return workspace;
}

/**
 * A Bazel repository cache in `dir` holding the tarball, imported into the store at `home` with the
 * workspace's WORKSPACE naming its URLs (`mirror import --urls`). Returns what the import printed.
 */
async function importRepoCache(dir: string, home: string, tarball: Buffer, workspace: string): Promise<string> {
  const entry = join(dir, 'repo-cache', 'content_addressable', 'sha256', sha256(tarball));
  mkdirSync(entry, { recursive: true });
  writeFileSync(join(entry, 'file'), tarball);
  const args = ['mirror', 'import', join(dir, 'repo-cache'), '--urls', join(workspace, 'WORKSPACE')];
  return ok(await runAccel(['--home', home, ...args]), 'mirror import');
}

async function serve(t: TestContext, home: string, args: string[]): Promise<string> {
  return (await serveCli(t, home, args)).base;
}

/**
 * `bazel build //:all` in `workspace` with a fresh output root, HOME and repository cache and no --distdir: the
 * archive can come only from the network, that is from wherever the workspace's .bazelrc sends Bazel.
 */
async function bazelBuild(t: TestContext, workspace: string, label: string): Promise<RunResult> {
  const scratch = mkdtempSync(join(tmpdir(), 'accel-bazel-'));
  // Bazel marks its outputs read-only; make them writable again so the removal works for any user.
  t.after(() => {
    spawnSync('chmod', ['-R', 'u+w', scratch]);
    rmSync(scratch, { recursive: true, force: true });
  });
  const home = join(scratch, 'home');
  const repositoryCache = join(scratch, 'repository-cache');
  mkdirSync(home);
  mkdirSync(repositoryCache);
  const started = performance.now();
  const r = await runCommand(
    'bazel',
    [
      '--batch',
      `--output_user_root=${join(scratch, 'output')}`,
      'build',
      '//:all',
      `--repository_cache=${repositoryCache}`,
    ],
    { cwd: workspace, env: { HOME: home }, wrapper: ['timeout', String(BAZEL_TIMEOUT_SECONDS)] },
  );
  t.diagnostic(`${label}: bazel exit ${r.code} after ${Math.round(performance.now() - started)} ms`);
  return r;
}

test('Bazel builds a github.com http_archive from an offline mirror, configured only by `mirror config bazel --write`', {
  ...needsTools('bazel'),
  timeout: 900_000,
}, async (t) => {
  const dir = tempDir(t, 'accel-bazel-e2e-');
  const tarball = await packHello(dir);
  const hex = sha256(tarball);
  const workspace = workspaceCopy(dir, hex);
  const home = join(dir, 'accel-home');
  const imported = await importRepoCache(dir, home, tarball, workspace);
  assert.match(imported, /imported 1 files \(1 with URLs\), 0 failed/);

  // Control: without the mirror the archive is unreachable, so a pass below is the mirror's doing.
  const direct = await bazelBuild(t, workspace, 'without the mirror');
  assert.notEqual(direct.code, 0, 'Bazel must not find the archive without the mirror');
  assert.ok(direct.stderr.includes(`Error downloading [${ARCHIVE_URL}]`), direct.stderr);

  const base = await serve(t, home, ['--offline']);
  const written = ok(
    await runAccel(['--home', home, 'mirror', 'config', 'bazel', '--write', workspace, '--url', base]),
    'mirror config bazel --write',
  );
  assert.match(written, /accel-downloader\.cfg/);

  const built = await bazelBuild(t, workspace, 'through the mirror');
  assert.equal(built.code, 0, built.stderr);
  assert.ok(
    built.stderr.includes(`Rewritten [${ARCHIVE_URL}] as [${base}/https/${ARCHIVE_URL.slice('https://'.length)}]`),
    built.stderr,
  );
  const output = readFileSync(join(workspace, 'bazel-bin', 'greeting.out'), 'utf8');
  assert.equal(output, 'built by Bazel: hello from hello-1.0.0\n');

  const status = (await (await fetch(`${base}/_accel/status.json`)).json()) as {
    offline: boolean;
    hits: number;
    bytesFetched: number;
  };
  assert.equal(status.offline, true);
  assert.ok(status.hits >= 1, `expected a hit: ${JSON.stringify(status)}`);
  assert.equal(status.bytesFetched, 0, 'offline: nothing came from an upstream');
});

test('Bazel 4 offline with an http-only dependency: mirror config bazel --write adds the host rule, no hand edits', {
  ...needsTools('bazel'),
  timeout: 900_000,
}, async (t) => {
  const dir = tempDir(t, 'accel-bazel-http-');
  const tarball = await packHello(dir);
  const hex = sha256(tarball);
  const workspace = workspaceCopy(dir, hex);
  // A second dependency on a host that serves only plain http (Bazel 4's rewriter would send it to /https/).
  const plainUrl = 'http://plain-http.invalid/dist/hello-1.0.0.tar.gz';
  writeFileSync(
    join(workspace, 'WORKSPACE'),
    `${readFileSync(join(workspace, 'WORKSPACE'), 'utf8')}
http_archive(
    name = "hello_plain",
    build_file_content = 'exports_files(["greeting.txt"])\\n',
    sha256 = "${hex}",
    strip_prefix = "hello-1.0.0",
    urls = ["${plainUrl}"],
)
`,
  );
  writeFileSync(
    join(workspace, 'BUILD.bazel'),
    `${readFileSync(join(workspace, 'BUILD.bazel'), 'utf8')}
genrule(
    name = "plain",
    srcs = ["@hello_plain//:greeting.txt"],
    outs = ["plain.out"],
    cmd = "cp $< $@",
)
`,
  );
  const home = join(dir, 'accel-home');
  await importRepoCache(dir, home, tarball, workspace);

  const base = await serve(t, home, ['--offline']);
  ok(await runAccel(['--home', home, 'mirror', 'config', 'bazel', '--write', workspace, '--url', base]));
  const cfg = readFileSync(join(workspace, 'accel-downloader.cfg'), 'utf8');
  assert.match(cfg, new RegExp(`^rewrite \\(plain-http\\\\\\.invalid/\\.\\*\\) ${base}/http/\\$1$`, 'm'), cfg);

  const built = await bazelBuild(t, workspace, 'http-only dependency, offline');
  assert.equal(built.code, 0, built.stderr);
  assert.ok(
    built.stderr.includes(`Rewritten [${plainUrl}] as [${base}/http/plain-http.invalid/dist/hello-1.0.0.tar.gz`),
    built.stderr,
  );
  assert.equal(readFileSync(join(workspace, 'bazel-bin', 'plain.out'), 'utf8'), 'hello from hello-1.0.0\n');
});
