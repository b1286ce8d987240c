import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { AccelError } from '../../src/core/errors.ts';
import {
  type ClientTool,
  clientConfig,
  DOWNLOADER_CONFIG_NAME,
  formatClientConfig,
  writeBazelConfig,
} from '../../src/mirror/client-config.ts';
import { discoverUpstreams } from '../../src/mirror/upstreams.ts';
import { runCommand, tempDir } from '../helpers.ts';

const BASE = 'http://127.0.0.1:8000';

/** A home and an /etc of our own, so the machine's real pip.conf or .npmrc never leak into a test. */
function fakeMachine(t: Parameters<typeof tempDir>[0]): { home: string; etc: string } {
  const root = tempDir(t);
  const home = join(root, 'home');
  const etc = join(root, 'etc');
  mkdirSync(home);
  mkdirSync(etc);
  return { home, etc };
}

function write(path: string, content: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
}

function noUpstream(e: unknown): boolean {
  return e instanceof AccelError && e.code === 'ACCEL_MIRROR_NO_UPSTREAM' && e.exitCode === 2 && !!e.hint;
}

test('discovery reads pip.conf, .npmrc and .condarc from HOME', (t) => {
  const { home, etc } = fakeMachine(t);
  write(
    join(home, '.config', 'pip', 'pip.conf'),
    '# mine\n[install]\nindex-url = https://other.example.invalid/simple/\n[global]\nindex_url: https://pkgs.example.invalid/simple/\ntimeout = 60\n',
  );
  write(
    join(home, '.npmrc'),
    '@corp:registry=https://corp.example.invalid/\nregistry = "https://npm.example.invalid/" \n; comment\n',
  );
  write(
    join(home, '.condarc'),
    'channel_alias: https://conda.example.invalid\nchannels:\n  - mychannel\n  - https://other.example.invalid/chan\n',
  );
  assert.deepEqual(discoverUpstreams({}, home, { etc }), {
    pipIndex: 'https://pkgs.example.invalid/simple/',
    npmRegistry: 'https://npm.example.invalid/',
    condaChannels: ['mychannel', 'https://other.example.invalid/chan'],
    condaChannelAlias: 'https://conda.example.invalid',
  });
});

test('discovery finds nothing on a bare machine', (t) => {
  const { home, etc } = fakeMachine(t);
  assert.deepEqual(discoverUpstreams({}, home, { etc }), {});
});

test('the environment overrides the files', (t) => {
  const { home, etc } = fakeMachine(t);
  write(join(home, '.config', 'pip', 'pip.conf'), '[global]\nindex-url = https://file.example.invalid/simple/\n');
  write(join(home, '.npmrc'), 'registry=https://file.example.invalid/\n');
  write(join(home, '.condarc'), 'channels: [https://file.example.invalid/chan]\n');
  const rc = join(home, 'other.condarc');
  write(rc, 'channels: [https://env.example.invalid/chan]\n');
  const env = {
    PIP_INDEX_URL: 'https://env.example.invalid/simple/',
    NPM_CONFIG_REGISTRY: 'https://env.example.invalid/npm/',
    CONDARC: rc,
  };
  assert.deepEqual(discoverUpstreams(env, home, { etc }), {
    pipIndex: 'https://env.example.invalid/simple/',
    npmRegistry: 'https://env.example.invalid/npm/',
    condaChannels: ['https://env.example.invalid/chan'],
  });
  assert.equal(
    discoverUpstreams({ npm_config_registry: 'https://lower.example.invalid/' }, home, { etc }).npmRegistry,
    'https://lower.example.invalid/',
  );
});

test('pip files are searched by precedence: PIP_CONFIG_FILE, then ~/.config, ~/.pip, /etc', (t) => {
  const { home, etc } = fakeMachine(t);
  write(join(etc, 'pip.conf'), '[global]\nindex-url = https://etc.example.invalid/simple/\n');
  assert.equal(discoverUpstreams({}, home, { etc }).pipIndex, 'https://etc.example.invalid/simple/');
  write(join(home, '.pip', 'pip.conf'), '[global]\nindex-url = https://legacy.example.invalid/simple/\n');
  assert.equal(discoverUpstreams({}, home, { etc }).pipIndex, 'https://legacy.example.invalid/simple/');
  // A file without an index does not hide the next one's (pip merges its files key by key).
  write(join(home, '.config', 'pip', 'pip.conf'), '[global]\ntimeout = 60\n');
  assert.equal(discoverUpstreams({}, home, { etc }).pipIndex, 'https://legacy.example.invalid/simple/');
  const custom = join(home, 'custom.conf');
  write(custom, '[global]\nindex-url =\n    https://custom.example.invalid/simple/\n');
  assert.equal(
    discoverUpstreams({ PIP_CONFIG_FILE: custom }, home, { etc }).pipIndex,
    'https://custom.example.invalid/simple/',
  );
  assert.equal(discoverUpstreams({ PIP_CONFIG_FILE: '/dev/null' }, home, { etc }).pipIndex, undefined);
});

test('npm: NPM_CONFIG_USERCONFIG and variables in .npmrc are honoured', (t) => {
  const { home, etc } = fakeMachine(t);
  // biome-ignore lint/suspicious/noTemplateCurlyInString: npm's own ${VAR} syntax, meant literally.
  write(join(home, 'alt.npmrc'), 'registry=https://${NPM_HOST}/npm/ # comment\n');
  const env = { NPM_CONFIG_USERCONFIG: '~/alt.npmrc', NPM_HOST: 'npm.example.invalid' };
  assert.equal(discoverUpstreams(env, home, { etc }).npmRegistry, 'https://npm.example.invalid/npm/');
});

test('conda: "defaults" expands to default_channels; a broken .condarc is a user error', (t) => {
  const { home, etc } = fakeMachine(t);
  write(
    join(home, '.condarc'),
    'channels: [defaults, https://x.example.invalid/c]\ndefault_channels:\n  - https://d.example.invalid/main\n',
  );
  assert.deepEqual(discoverUpstreams({}, home, { etc }).condaChannels, [
    'https://d.example.invalid/main',
    'https://x.example.invalid/c',
  ]);
  write(join(home, '.condarc'), 'channels: [unclosed\n');
  assert.throws(
    () => discoverUpstreams({}, home, { etc }),
    (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_MIRROR_BAD_CLIENT_FILE' && e.exitCode === 2,
  );
});

test('pip: index-url and trusted-host point at the mirror, as pip.conf and as exports', () => {
  const config = clientConfig('pip', {
    base: `${BASE}/`,
    upstreams: { pipIndex: 'https://pkgs.example.invalid/simple/' },
  });
  const index = 'http://127.0.0.1:8000/https/pkgs.example.invalid/simple/';
  const conf = config.files[0]?.content ?? '';
  assert.match(conf, /^\[global\]$/m);
  assert.ok(conf.includes(`\nindex-url = ${index}\n`), conf);
  assert.ok(conf.includes('\ntrusted-host = 127.0.0.1:8000\n'), conf);
  assert.ok(config.lines.includes(`export PIP_INDEX_URL=${index}`));
  assert.ok(config.lines.includes('export PIP_TRUSTED_HOST=127.0.0.1:8000'));
  // An https mirror needs no trusted host.
  const secure = clientConfig('pip', {
    base: 'https://mirror.example.invalid',
    upstreams: { pipIndex: 'https://pkgs.example.invalid/simple/' },
  });
  assert.ok(!formatClientConfig(secure).includes('trusted'));
});

test('npm: the registry goes through the mirror and keeps a trailing slash', () => {
  for (const registry of ['https://npm.example.invalid/repo/npm', 'https://npm.example.invalid/repo/npm/']) {
    const config = clientConfig('npm', { base: BASE, upstreams: { npmRegistry: registry } });
    const expected = 'http://127.0.0.1:8000/https/npm.example.invalid/repo/npm/';
    assert.ok(config.files[0]?.content.includes(`\nregistry=${expected}\n`));
    assert.ok(config.lines.includes(`export npm_config_registry=${expected}`));
  }
});

test('conda: URLs are mirrored, bare names stay under a mirrored channel_alias', () => {
  const config = clientConfig('conda', {
    base: BASE,
    upstreams: {
      condaChannels: ['mychannel', 'https://other.example.invalid/chan/', 'file:///srv/local-channel'],
      condaChannelAlias: 'https://conda.example.invalid/',
    },
  });
  assert.deepEqual(parseYaml(config.files[0]?.content ?? ''), {
    channel_alias: 'http://127.0.0.1:8000/https/conda.example.invalid',
    channels: ['mychannel', 'http://127.0.0.1:8000/https/other.example.invalid/chan', 'file:///srv/local-channel'],
  });
  const urlsOnly = clientConfig('conda', {
    base: BASE,
    upstreams: { condaChannels: ['http://plain.example.invalid/chan'] },
  });
  assert.deepEqual(parseYaml(urlsOnly.files[0]?.content ?? ''), {
    channels: ['http://127.0.0.1:8000/http/plain.example.invalid/chan'],
  });
});

test('a missing upstream is ACCEL_MIRROR_NO_UPSTREAM with a hint, per tool', () => {
  const cases: [ClientTool, object][] = [
    ['pip', {}],
    ['npm', {}],
    ['conda', {}],
    ['conda', { condaChannels: ['mychannel'] }],
    ['conda', { condaChannels: ['defaults'] }],
  ];
  for (const [tool, upstreams] of cases) {
    assert.throws(
      () => clientConfig(tool, { base: BASE, upstreams }),
      noUpstream,
      `${tool} ${JSON.stringify(upstreams)}`,
    );
  }
  assert.throws(
    () => clientConfig('conda', { base: BASE, upstreams: { condaChannels: ['mychannel'] } }),
    (e: unknown) => e instanceof AccelError && /channel_alias/.test(e.hint ?? ''),
  );
});

test('bad bases and bad upstreams are user errors', () => {
  for (const base of ['ftp://127.0.0.1:8000', '127.0.0.1:8000', 'http://u:p@127.0.0.1:8000', 'http://h/?q=1']) {
    assert.throws(
      () => clientConfig('curl', { base, upstreams: {} }),
      (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_MIRROR_BAD_BASE_URL' && e.exitCode === 2,
      base,
    );
  }
  assert.throws(
    () => clientConfig('pip', { base: BASE, upstreams: { pipIndex: 'not a url' } }),
    (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_MIRROR_BAD_UPSTREAM',
  );
  assert.throws(
    () =>
      clientConfig('pip', { base: BASE, upstreams: { pipIndex: 'https://me:secret@pkgs.example.invalid/simple/' } }),
    (e: unknown) =>
      e instanceof AccelError && e.code === 'ACCEL_MIRROR_UPSTREAM_CREDENTIALS' && !e.message.includes('secret'),
  );
});

test('an upstream already inside the mirror is not wrapped twice', () => {
  const index = 'http://127.0.0.1:8000/https/pkgs.example.invalid/simple/';
  const config = clientConfig('pip', { base: BASE, upstreams: { pipIndex: index } });
  assert.ok(config.lines.includes(`export PIP_INDEX_URL=${index}`));
});

test('bazel: the rewrite line and the .bazelrc line', () => {
  const path = '/ws/accel-downloader.cfg';
  const config = clientConfig('bazel', { base: BASE, upstreams: {}, downloaderConfigPath: path });
  assert.equal(config.files[0]?.name, DOWNLOADER_CONFIG_NAME);
  assert.match(config.files[0]?.content ?? '', /^rewrite \(\.\*\) http:\/\/127\.0\.0\.1:8000\/https\/\$1$/m);
  assert.ok(config.lines.includes(`common --experimental_downloader_config=${path}`));
  const text = formatClientConfig(config);
  assert.ok(text.includes(`# ---- ${DOWNLOADER_CONFIG_NAME}:`) && text.includes('--downloader_config'), text);
});

/**
 * Bazel's rewriter, as the notes describe it: the regex must match the whole URL with its scheme removed,
 * `$n` takes the groups, and the original scheme is put back unless the replacement starts with one.
 */
function bazelRewrite(cfg: string, url: string): string[] {
  const scheme = /^(https?):\/\//.exec(url)?.[1] ?? '';
  const rest = url.slice(scheme.length + 3);
  const out: string[] = [];
  for (const line of cfg.split('\n')) {
    const [directive, pattern, replacement] = line.trim().split(/\s+/);
    if (directive !== 'rewrite' || pattern === undefined || replacement === undefined) continue;
    const match = new RegExp(`^(?:${pattern})$`).exec(rest);
    if (!match) continue;
    const rewritten = replacement.replace(/\$(\d)/g, (_, n: string) => match[Number(n)] ?? '');
    out.push(/^https?:\/\//.test(rewritten) ? rewritten : `${scheme}://${rewritten}`);
  }
  return out;
}

test('bazel: the rewrite sends a schemeless URL to the mirror over plain http', () => {
  const cfg = clientConfig('bazel', { base: BASE, upstreams: {}, downloaderConfigPath: '/x' }).files[0]?.content ?? '';
  assert.deepEqual(bazelRewrite(cfg, 'https://github.com/a/b/archive/v1.tar.gz'), [
    'http://127.0.0.1:8000/https/github.com/a/b/archive/v1.tar.gz',
  ]);
  // Plain-http origins are fetched over https, as the file's comment says.
  assert.deepEqual(bazelRewrite(cfg, 'http://example.invalid/f.zip'), [
    'http://127.0.0.1:8000/https/example.invalid/f.zip',
  ]);
});

test('writeBazelConfig writes the cfg and one .bazelrc line, however often it runs', (t) => {
  const workspace = tempDir(t);
  writeFileSync(join(workspace, '.bazelrc'), 'build --jobs=4');
  const first = writeBazelConfig(workspace, `${BASE}/`);
  const second = writeBazelConfig(workspace, BASE);
  assert.deepEqual(first, second);
  assert.equal(first.downloaderConfig, join(workspace, DOWNLOADER_CONFIG_NAME));
  const rc = readFileSync(first.bazelrc, 'utf8');
  const line = `common --experimental_downloader_config=${first.downloaderConfig}`;
  assert.equal(rc.split('\n').filter((l) => l === line).length, 1);
  assert.ok(rc.startsWith('build --jobs=4\n'), rc);
  const cfg = readFileSync(first.downloaderConfig, 'utf8');
  assert.match(cfg, /^rewrite \(\.\*\) http:\/\/127\.0\.0\.1:8000\/https\/\$1$/m);
  assert.deepEqual(readdirSync(workspace).sort(), ['.bazelrc', DOWNLOADER_CONFIG_NAME]);
});

test('curl: accel_url maps http and https URLs in a real shell', async () => {
  const config = clientConfig('curl', { base: BASE, upstreams: {} });
  const text = formatClientConfig(config);
  assert.ok(text.includes('curl -fL "$(accel_url https://example.invalid/file.tar.gz)" -o file.tar.gz'));
  const script = `${config.lines.join('\n')}
accel_url https://example.invalid/file.tar.gz
accel_url 'http://example.invalid:8080/a b?x=1'
accel_url ftp://example.invalid/x || echo refused`;
  const result = await runCommand('sh', ['-c', script]);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.stdout.toString().trim().split('\n'), [
    'http://127.0.0.1:8000/https/example.invalid/file.tar.gz',
    'http://127.0.0.1:8000/http/example.invalid:8080/a b?x=1',
    'refused',
  ]);
});
