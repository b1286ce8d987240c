import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { cleanEnv, tempDir } from './helpers.ts';

const execFileAsync = promisify(execFile);

/** A tiny Architecture: all package, built for real with dpkg-deb. */
export interface FakePackage {
  name: string;
  version: string;
  /** The Depends field as written in a control file, e.g. `accel-lib (>= 1.0)`. */
  depends?: string;
  arch?: 'all';
}

export interface AptRepoOptions {
  /** Used as both Suite and Codename. */
  suite: string;
  packages: FakePackage[];
  /** GnuPG home holding the archive's throw-away signing key; the key is made on first use and reused after. */
  gpgHome: string;
  /** Written: the public key, binary, for `deb [signed-by=…]`. */
  keyring: string;
  /** Announce `Acquire-By-Hash: yes` and put `by-hash/SHA256/<hex>` copies of every index beside it. */
  byHash?: boolean;
}

/** Every program the apt fixtures run: a test that uses them takes `needsTools(...APT_TOOLS)`. */
export const APT_TOOLS = ['apt-get', 'apt-ftparchive', 'dpkg-deb', 'gpg', 'gpgconf', 'xz'];

/**
 * Builds a signed Debian-style archive in `dir`: pool/main/… with real .debs and dists/<suite>/ with
 * Packages{,.gz,.xz}, Release, InRelease and Release.gpg. The Release lists only `all`, so apt configured
 * for amd64 (see `aptGet`) fetches binary-all and nothing else. Building into a new dir gives a new state.
 */
export async function buildAptRepo(dir: string, options: AptRepoOptions): Promise<void> {
  const { suite } = options;
  const staging = await mkdtemp(join(tmpdir(), 'accel-deb-'));
  try {
    for (const pkg of options.packages) {
      const deb = join(dir, 'pool', 'main', pkg.name.slice(0, 1), pkg.name, `${pkg.name}_${pkg.version}_all.deb`);
      await buildDeb(join(staging, `${pkg.name}_${pkg.version}`), pkg, deb);
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }

  const dists = join(dir, 'dists', suite);
  const binary = join(dists, 'main', 'binary-all');
  await mkdir(binary, { recursive: true });
  const packages = await run('apt-ftparchive', ['packages', 'pool/main'], dir);
  await writeFile(join(binary, 'Packages'), packages);
  await writeFile(join(binary, 'Packages.gz'), gzipSync(packages, { level: 9 }));
  await run('xz', ['--keep', '--force', '-9', join(binary, 'Packages')]);

  const fields: Record<string, string> = {
    Origin: 'accel-test',
    Label: 'accel-test',
    Suite: suite,
    Codename: suite,
    Architectures: 'all',
    Components: 'main',
    Description: 'accel test archive',
  };
  if (options.byHash) fields['Acquire-By-Hash'] = 'yes';
  const settings = Object.entries(fields).flatMap(([k, v]) => ['-o', `APT::FTPArchive::Release::${k}=${v}`]);
  // Checksums as Debian's own archive lists them: apt fetches by-hash under the strongest one listed.
  settings.push('-o', 'APT::FTPArchive::Release::SHA1=false', '-o', 'APT::FTPArchive::Release::SHA512=false');
  const release = await run('apt-ftparchive', [...settings, 'release', '.'], dists);
  // By-hash copies come after the Release so that apt-ftparchive never lists them.
  await writeFile(join(dists, 'Release'), release);
  if (options.byHash) {
    for (const name of ['Packages', 'Packages.gz', 'Packages.xz']) {
      const body = await readFile(join(binary, name));
      const target = join(binary, 'by-hash', 'SHA256', createHash('sha256').update(body).digest('hex'));
      await mkdir(dirname(target), { recursive: true });
      await copyFile(join(binary, name), target);
    }
  }
  await sign(dists, options);
}

async function buildDeb(tree: string, pkg: FakePackage, deb: string): Promise<void> {
  const control = [
    `Package: ${pkg.name}`,
    `Version: ${pkg.version}`,
    `Architecture: ${pkg.arch ?? 'all'}`,
    'Maintainer: accel test <test@example.invalid>',
    ...(pkg.depends ? [`Depends: ${pkg.depends}`] : []),
    'Section: misc',
    'Priority: optional',
    `Description: accel test package ${pkg.name}`,
    ' A tiny package for testing the accel apt mirror.',
    '',
  ].join('\n');
  await mkdir(join(tree, 'DEBIAN'), { recursive: true });
  await writeFile(join(tree, 'DEBIAN', 'control'), control);
  await mkdir(join(tree, 'usr', 'share', pkg.name), { recursive: true });
  await writeFile(join(tree, 'usr', 'share', pkg.name, 'README'), `${pkg.name} ${pkg.version}\n`);
  await mkdir(dirname(deb), { recursive: true });
  await run('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', tree, deb]);
}

/** Signs dists/<suite>/Release both ways apt accepts and exports the public key. */
async function sign(dists: string, options: AptRepoOptions): Promise<void> {
  const home = resolve(options.gpgHome);
  await mkdir(home, { recursive: true });
  await chmod(home, 0o700);
  const gpg = (...args: string[]) =>
    run('gpg', ['--homedir', home, '--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase', '', ...args]);
  try {
    const secret = await gpg('--list-secret-keys', '--with-colons');
    if (!/^sec:/m.test(secret)) {
      await gpg('--quick-gen-key', 'accel test <test@example.invalid>', 'ed25519', 'sign', 'never');
    }
    const release = join(dists, 'Release');
    await gpg('--clearsign', '--output', join(dists, 'InRelease'), release);
    await gpg('--detach-sign', '--armor', '--output', join(dists, 'Release.gpg'), release);
    await gpg('--export', '--output', resolve(options.keyring));
  } finally {
    // gpg leaves a gpg-agent daemon behind; a fixture must not outlive its test.
    await run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
  }
}

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...cleanEnv(), LC_ALL: 'C' };
  delete env.GNUPGHOME;
  const { stdout } = await execFileAsync(cmd, args, { cwd, env, timeout: 60_000, maxBuffer: 64 << 20 });
  return stdout;
}

export interface ArchiveServer {
  /** `127.0.0.1:<port>`, as in the fake upstream. */
  origin: string;
  port: number;
  /** Serve from `dir` from the next request on: the switch from one archive state to the next is atomic. */
  setRoot(dir: string): void;
  requests: { path: string; method: string; headers: IncomingMessage['headers'] }[];
  /** How many requests had a path starting with `prefix`. */
  count(prefix: string): number;
  close(): Promise<void>;
}

/**
 * A static file server for an archive built by `buildAptRepo`. It answers every GET in full (no 304 for
 * If-Modified-Since): two states built within one second share Last-Modified, and must never be confused.
 */
export async function startArchiveServer(root: string): Promise<ArchiveServer> {
  let current = resolve(root);
  const requests: ArchiveServer['requests'] = [];
  const sockets = new Set<Socket>();

  const server = createServer(async (req, res) => {
    const base = current;
    const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
    requests.push({ path: rawPath, method: req.method ?? '', headers: req.headers });
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      return void res.writeHead(400).end('bad path');
    }
    if (path.split('/').includes('..') || path.includes('\0')) return void res.writeHead(400).end('bad path');
    const file = resolve(base, `.${path}`);
    if (!file.startsWith(base + sep)) return void res.writeHead(400).end('bad path');
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return void res.writeHead(404).end('not found');
      return void res.writeHead(500).end(String(err));
    }
    if (!info.isFile()) return void res.writeHead(404).end('not found');
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': info.size,
      'last-modified': info.mtime.toUTCString(),
    });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  });

  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolvePromise) => server.listen(0, '127.0.0.1', resolvePromise));
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `127.0.0.1:${port}`,
    port,
    setRoot: (dir) => {
      current = resolve(dir);
    },
    requests,
    count: (prefix) => requests.filter((r) => r.path.startsWith(prefix)).length,
    close: () =>
      new Promise((resolvePromise) => {
        server.close(() => resolvePromise());
        for (const s of sockets) s.destroy();
      }),
  };
}

export interface AptGetOptions {
  /** The sources.list text: one or more `deb [signed-by=…] http://… <suite> main` lines. */
  sourcesList: string;
  /** A directory for all of apt's state, cache and configuration; reused across calls. */
  root: string;
  env?: NodeJS.ProcessEnv;
}

export interface AptGetResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real apt-get confined to `root`. The configuration goes in through APT_CONFIG because apt reads
 * that file before /etc/apt/apt.conf.d, and a `-o Dir::Etc::Parts=` on the command line comes too late to
 * keep the machine's settings (proxies, GzipIndexes, Check-Valid-Until) out. Extra `-o` in `args` win.
 */
export async function aptGet(args: string[], options: AptGetOptions): Promise<AptGetResult> {
  const root = resolve(options.root);
  const etc = join(root, 'etc');
  for (const d of ['apt.conf.d', 'sources.list.d', 'preferences.d', 'trusted.gpg.d']) {
    await mkdir(join(etc, d), { recursive: true });
  }
  await mkdir(join(root, 'state', 'lists', 'partial'), { recursive: true });
  await mkdir(join(root, 'cache', 'archives', 'partial'), { recursive: true });
  await mkdir(join(root, 'log'), { recursive: true });
  // An empty dpkg status: nothing is installed, so install --download-only resolves every dependency.
  await writeFile(join(root, 'state', 'status'), '', { flag: 'a' });
  await writeFile(
    join(etc, 'sources.list'),
    options.sourcesList.endsWith('\n') ? options.sourcesList : `${options.sourcesList}\n`,
  );
  const settings: Record<string, string> = {
    'Dir::Etc': etc,
    'Dir::Etc::Main': join(etc, 'apt.conf'),
    'Dir::Etc::Parts': join(etc, 'apt.conf.d'),
    'Dir::Etc::SourceList': join(etc, 'sources.list'),
    'Dir::Etc::SourceParts': join(etc, 'sources.list.d'),
    'Dir::Etc::Preferences': join(etc, 'preferences'),
    'Dir::Etc::PreferencesParts': join(etc, 'preferences.d'),
    'Dir::Etc::Trusted': join(etc, 'trusted.gpg'),
    'Dir::Etc::TrustedParts': join(etc, 'trusted.gpg.d'),
    'Dir::State': join(root, 'state'),
    'Dir::State::status': join(root, 'state', 'status'),
    'Dir::Cache': join(root, 'cache'),
    'Dir::Log': join(root, 'log'),
    'Debug::NoLocking': '1',
    // As root apt hands downloads to _apt, who cannot enter a 0700 temp dir (apt falls back, with a warning).
    'APT::Sandbox::User': 'root',
    'APT::Architecture': 'amd64',
    'Acquire::Languages': 'none',
    'Acquire::Retries': '0',
    'Acquire::http::Timeout': '10',
    'Acquire::http::Proxy::127.0.0.1': 'DIRECT',
  };
  const conf = Object.entries(settings).map(([k, v]) => `${k} ${JSON.stringify(v)};`);
  // A list, so that dpkg's foreign architectures on this machine do not matter.
  conf.push('APT::Architectures { "amd64"; };', '');
  const confFile = join(root, 'apt.conf');
  await writeFile(confFile, conf.join('\n'));

  const env: NodeJS.ProcessEnv = { ...cleanEnv(), LC_ALL: 'C', APT_CONFIG: confFile, ...options.env };
  for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']) {
    if (!options.env?.[k]) delete env[k];
  }
  return new Promise((resolvePromise, reject) => {
    const child = spawn('apt-get', args, {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

/** The .deb files apt has put in its archives cache under `root`, sorted. */
export function debsDownloaded(root: string): string[] {
  try {
    return readdirSync(join(root, 'cache', 'archives'))
      .filter((name) => name.endsWith('.deb'))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** `apt-get update` and a download-only install of accel-hello against `sourcesList`, in a root of its own; the .debs fetched. */
export async function updateAndDownload(t: TestContext, sourcesList: string): Promise<string[]> {
  const root = tempDir(t);
  const update = await aptGet(['update'], { sourcesList, root });
  assert.equal(update.code, 0, update.stderr + update.stdout);
  assert.doesNotMatch(update.stderr, /^(W|E):/m, update.stderr);
  const install = await aptGet(['install', '--download-only', '-y', 'accel-hello'], { sourcesList, root });
  assert.equal(install.code, 0, install.stderr + install.stdout);
  return debsDownloaded(root);
}
