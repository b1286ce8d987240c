// Runs the built single executables the way users do: copied alone into a folder, no Node anywhere on PATH.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadIdentity } from '../../src/net/tls-identity.ts';
import { services } from '../../src/reapi/proto.ts';
import { SCHEMA_VERSION } from '../../src/store/db.ts';
import { needsTools, ok, ROOT, runCommand, sha256, tempDir, unprivileged } from '../helpers.ts';
import { farmCerts } from '../integration/farm-harness.ts';

const X64 = join(ROOT, 'build', 'out', 'accel-linux-x64');
const ARM64 = join(ROOT, 'build', 'out', 'accel-linux-arm64');
const QEMU = ['/usr/bin/qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu'];

/** CI builds both executables before the tests, so there a missing one fails; locally it skips, saying why. */
function needs(file: string, build: string): { skip: string | false } {
  if (existsSync(file) || process.env.CI) return { skip: false };
  return { skip: `${file} not built: run \`npm run ${build}\`` };
}

/** A folder holding only the executable, and a clean environment whose PATH is that folder. */
function isolate(t: import('node:test').TestContext, exe: string) {
  assert.ok(existsSync(exe), `${exe} is missing: CI must build it before the tests (see .ci/run)`);
  const dir = tempDir(t, 'accel-e2e-');
  chmodSync(dir, 0o755);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  copyFileSync(exe, join(bin, 'accel'));
  const home = join(dir, 'home');
  mkdirSync(home);
  const env = { PATH: bin, HOME: home };
  return { dir, bin, home, env };
}

test('x64: runs with no Node on PATH: --version, --help, version --json', needs(X64, 'build'), async (t) => {
  const { bin, env } = isolate(t, X64);
  const accel = join(bin, 'accel');
  const run = (args: string[]) => runCommand('env', ['-i', `PATH=${env.PATH}`, `HOME=${env.HOME}`, accel, ...args]);
  assert.equal((await runCommand('env', ['-i', `PATH=${env.PATH}`, 'sh', '-c', 'command -v node'])).code, 127);
  const pkg = (await import(join(ROOT, 'package.json'), { with: { type: 'json' } })).default as { version: string };
  assert.equal(ok(await run(['--version'])).trim(), pkg.version);
  assert.match(ok(await run(['--help'])), /Examples:/);
  const version = JSON.parse(ok(await run(['--json', 'version'])));
  assert.equal(version.singleExecutable, true);
  assert.equal(version.arch, 'x64');
  assert.equal(version.node.split('.')[0], '24');
  assert.match(version.sqlite, /^3\.\d+\.\d+$/);
  assert.equal(version.storeSchema, SCHEMA_VERSION);
});

test('x64: store put, get and verify round trip; native addons unpacked once', needs(X64, 'build'), async (t) => {
  const { bin, env, home, dir } = isolate(t, X64);
  const accel = join(bin, 'accel');
  const run = (args: string[], input?: string) =>
    runCommand('env', ['-i', `PATH=${env.PATH}`, `HOME=${env.HOME}`, accel, ...args], { input });
  const file = join(dir, 'data.txt');
  writeFileSync(file, 'round trip\n');
  const digest = ok(await run(['store', 'put', file])).split(' ')[0] as string;
  assert.equal(digest, sha256('round trip\n'));
  assert.equal(ok(await run(['store', 'get', digest])), 'round trip\n');
  assert.equal(ok(await run(['store', 'put', '-'], 'from stdin')).split(' ')[0], sha256('from stdin'));
  assert.match(ok(await run(['store', 'verify'])), /checked 2 blobs.*0 corrupt/);
  const native = join(home, '.cache', 'accel', 'native');
  const { readdirSync } = await import('node:fs');
  const folders = readdirSync(native);
  assert.equal(folders.length, 1);
  assert.match(folders[0] as string, /^[0-9a-f]{16}-x64$/);
  assert.deepEqual(readdirSync(join(native, folders[0] as string)), ['better_sqlite3.node']);
});

test('x64: the embedded @parcel/watcher sees a file change', needs(X64, 'build'), async (t) => {
  const { bin, env, dir } = isolate(t, X64);
  const watched = join(dir, 'watched');
  mkdirSync(watched);
  const child = spawn(join(bin, 'accel'), ['debug', 'watch', watched, '--timeout', '20'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  const ready = new Promise<void>((resolve) =>
    child.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.includes('watching')) resolve();
    }),
  );
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await ready;
  writeFileSync(join(watched, 'changed.h'), '#define X 1\n');
  assert.equal(await exited, 0, stderr);
  assert.match(stdout, new RegExp(`create\\t${join(watched, 'changed.h')}`));
});

test(
  'x64: a read-only ACCEL_HOME: version, --help and mirror config work; the store is a clear error',
  needs(X64, 'build'),
  async (t) => {
    const { bin, dir } = isolate(t, X64);
    const home = join(dir, 'readonly-home');
    mkdirSync(home, { mode: 0o555 });
    chmodSync(home, 0o555);
    const user = unprivileged();
    if (!user) t.diagnostic('not root: relying on the directory mode alone');
    const env = { PATH: bin, HOME: dir, TMPDIR: join(dir, 'tmp') };
    mkdirSync(env.TMPDIR, { mode: 0o1777 });
    chmodSync(env.TMPDIR, 0o1777);
    // Native code (SQLite for `version`) unpacks into a private folder under TMPDIR when the home refuses it.
    for (const args of [
      ['version'],
      ['store', '--help'],
      ['mirror', 'config', 'pip', '--upstream', 'http://127.0.0.1:1/simple'],
    ]) {
      const r = await runCommand(join(bin, 'accel'), ['--home', home, ...args], { env, user });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    const v = await runCommand(join(bin, 'accel'), ['--home', home, 'version', '--json'], { env, user });
    assert.match(JSON.parse(v.stdout.toString()).sqlite, /^3\./);
    // The store itself needs a writable home: a clear error with a hint, never a crash.
    const r = await runCommand(join(bin, 'accel'), ['--home', home, 'store', 'info'], { env, user });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[ACCEL_STORE_NOT_WRITABLE\]/);
    assert.match(r.stderr, /hint: /);
    assert.doesNotMatch(r.stderr, /internal error|Segmentation|Error: /);
    // A temp folder someone else could write into is never used for native code.
    const shared = join(dir, 'shared-tmp');
    mkdirSync(shared, { mode: 0o777 });
    chmodSync(shared, 0o777);
    const uid = user?.uid ?? process.getuid?.() ?? 0;
    mkdirSync(join(shared, `accel-native-${uid}`), { mode: 0o777 });
    chmodSync(join(shared, `accel-native-${uid}`), 0o777);
    const refused = await runCommand(join(bin, 'accel'), ['--home', home, 'version'], {
      env: { ...env, TMPDIR: shared },
      user,
    });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /\[ACCEL_NATIVE_NOT_WRITABLE\]/);
  },
);

test(
  'x64: the embedded native cc client: installed on first use, starts the daemon, a second compile hits',
  needs(X64, 'build'),
  async (t) => {
    const { bin, home, dir } = isolate(t, X64);
    // The compiler and assembler, without Node or anything else from /usr/bin.
    const tools = join(dir, 'tools');
    mkdirSync(tools);
    for (const tool of ['gcc', 'as']) symlinkSync(join('/usr/bin', tool), join(tools, tool));
    const env = { PATH: `${bin}:${tools}`, HOME: home };
    const run = (cmd: string, args: string[], cwd = dir) =>
      runCommand(
        'env',
        ['-i', `PATH=${env.PATH}`, `HOME=${env.HOME}`, 'ACCEL_CC_DAEMON_IDLE_TIMEOUT=60', cmd, ...args],
        { cwd },
      );
    const masq = ok(await run(join(bin, 'accel'), ['cc', '--masquerade-dir'])).trim();
    // Not run in the test's folder: it may be gone by the time this hook runs.
    t.after(() => run(join(bin, 'accel'), ['cc', 'daemon', '--stop'], '/'));
    const installed = join(home, '.cache', 'accel', 'bin');
    assert.ok(
      readFileSync(join(installed, 'accel-cc')).equals(readFileSync(join(ROOT, 'build', 'out', 'accel-cc-linux-x64'))),
      'the embedded client is the one the build made',
    );
    assert.equal(realpathSync(join(installed, 'accel')), realpathSync(join(bin, 'accel')));
    writeFileSync(join(dir, 'x.c'), 'int x(void) { return 6; }\n');
    ok(await run(join(masq, 'gcc'), ['-c', 'x.c', '-o', 'a.o']));
    ok(await run(join(masq, 'gcc'), ['-c', 'x.c', '-o', 'b.o']));
    const counters = JSON.parse(ok(await run(join(bin, 'accel'), ['--json', 'cc', '--stats']))).counters;
    assert.deepEqual(counters, { hit: 1, miss: 1 });
    assert.ok(readFileSync(join(dir, 'a.o')).equals(readFileSync(join(dir, 'b.o'))));
    assert.match(ok(await run(join(bin, 'accel'), ['cc', 'daemon', '--status'])), /requests: +2/);
  },
);

test(
  'x64: the syncer serves the Remote Execution API from inside the executable (gRPC and protobuf bundled)',
  needs(X64, 'build'),
  async (t) => {
    const { bin, dir } = isolate(t, X64);
    const homes = await farmCerts(dir, { syncer: 'syncer', dev: 'client' });
    const child = spawn(
      join(bin, 'accel'),
      ['--home', homes.syncer as string, 'syncer', '--port', '0', '--reapi-port', '0'],
      { env: { PATH: bin, HOME: dir }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    t.after(() => child.kill('SIGKILL'));
    let stderr = '';
    const port = await new Promise<number>((resolve, reject) => {
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /REAPI \(gRPC\) listening on grpcs:\/\/\S+:(\d+)/.exec(stderr);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`the syncer exited ${code}: ${stderr}`)));
    });
    const id = loadIdentity(homes.dev as string);
    const client = new grpc.Client(
      `127.0.0.1:${port}`,
      grpc.credentials.createSsl(Buffer.from(id.ca), Buffer.from(id.key), Buffer.from(id.cert)),
    );
    t.after(() => client.close());
    const spec = services.Capabilities.GetCapabilities;
    const caps = await new Promise<{ execution_capabilities?: { exec_enabled: boolean } }>((resolve, reject) =>
      client.makeUnaryRequest(
        spec.path,
        spec.requestSerialize,
        spec.responseDeserialize as (b: Buffer) => { execution_capabilities?: { exec_enabled: boolean } },
        {},
        new grpc.Metadata(),
        { deadline: Date.now() + 20_000 },
        (err, res) => (err || !res ? reject(err) : resolve(res)),
      ),
    );
    assert.equal(caps.execution_capabilities?.exec_enabled, true);
  },
);

test('arm64: --version and a store round trip under qemu', {
  skip: needs(ARM64, 'build:arm64').skip || needsTools('qemu-aarch64-static').skip,
}, async (t) => {
  const { bin, home } = isolate(t, ARM64);
  const run = (args: string[], input?: string) =>
    runCommand('env', ['-i', `HOME=${home}`, ...QEMU, join(bin, 'accel'), ...args], { input });
  const pkg = (await import(join(ROOT, 'package.json'), { with: { type: 'json' } })).default as { version: string };
  assert.equal(ok(await run(['--version'])).trim(), pkg.version);
  const digest = ok(await run(['store', 'put', '-'], 'aarch64 bytes')).split(' ')[0] as string;
  assert.equal(digest, sha256('aarch64 bytes'));
  assert.equal(ok(await run(['store', 'get', digest])), 'aarch64 bytes');
  assert.equal(JSON.parse(ok(await run(['--json', 'version']))).arch, 'arm64');
  // The embedded cc client is the aarch64 build (ELF e_machine 183) and runs.
  ok(await run(['cc', '--masquerade-dir']));
  const client = join(home, '.cache', 'accel', 'bin', 'accel-cc');
  assert.equal(readFileSync(client).readUInt16LE(18), 183);
  const usage = await runCommand(QEMU[0] as string, [...QEMU.slice(1), client]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /usage: accel-cc <compiler>/);
});
