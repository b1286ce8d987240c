import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_LIMITS, sandboxCommand, sandboxUser } from '../../src/farm/bubblewrap.ts';
import type { JobResult } from '../../src/farm/protocol.ts';
import { toolchainKey } from '../../src/farm/protocol.ts';
import { InputPool, materialize } from '../../src/farm/sandbox.ts';
import { toolchainOf } from '../../src/farm/toolchain-key.ts';
import { MtlsClient } from '../../src/net/client.ts';
import { loadIdentity } from '../../src/net/tls-identity.ts';
import { Store } from '../../src/store/store.ts';
import { needsTools, runAccel, runCommand, tempDir, until } from '../helpers.ts';
import {
  accelCc,
  copyProject,
  farmCerts,
  objectFiles,
  slowCompilers,
  startAccel,
  startSyncer,
  startWorker,
} from './farm-harness.ts';

const GCC = '/usr/bin/gcc';

function job(cwd: string, args: string[]) {
  return { compiler: 'gcc', toolchain: toolchainKey(toolchainOf(GCC)), cwd, args, env: {}, startTimeoutMs: 20_000 };
}

async function submit(client: MtlsClient, spec: ReturnType<typeof job>): Promise<JobResult> {
  const { status, value } = await client.json<JobResult>('POST', '/jobs', spec, { timeoutMs: 60_000 });
  assert.equal(status, 200, JSON.stringify(value));
  return value;
}

test(
  'inside the sandbox a job sees no host files, no network, no host processes, and cannot write its inputs',
  needsTools('gcc', 'bwrap'),
  async (t) => {
    const dir = tempDir(t);
    const store = Store.open({ home: join(dir, 'home') });
    t.after(() => store.close());
    const header = Buffer.from('#define CORE 1\n');
    const { digest } = await store.putBuffer(header);
    const host = join(dir, 'home', 'job');
    mkdirSync(host);
    const user = sandboxUser();
    const mode = user
      ? ({ kind: 'link', owner: { uid: user.uid, gid: user.gid } } as const)
      : ({ kind: 'copy' } as const);
    const pool = new InputPool(join(dir, 'home'), store);
    materialize({
      store,
      pool,
      manifest: { roots: ['/src'], files: { '/src/include/core.h': digest } },
      root: host,
      mode,
    });
    // A server on the host's loopback: the job's network namespace has its own, empty one.
    const server = createServer((s) => s.end('reached\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => server.close());
    const port = (server.address() as { port: number }).port;
    const attacks = [
      'cat /etc/shadow && echo READ-SHADOW',
      `cat ${join(dir, 'home', 'index.db')} >/dev/null && echo READ-STORE`,
      'echo x >> /src/include/core.h && echo WROTE-INPUT',
      'chmod 666 /src/include/core.h && echo CHMOD-INPUT',
      'echo x > /usr/pwned && echo WROTE-USR',
      `echo hi > /dev/tcp/127.0.0.1/${port} && echo REACHED-NET`,
      `kill -0 ${process.pid} && echo SAW-HOST-PID`,
      'test "$(id -u)" = 0 && echo IS-ROOT',
      'echo out > /src/out.o && echo WROTE-OUTPUT',
    ];
    const root = '/accel-job-test';
    const command = sandboxCommand({
      compiler: '/bin/bash',
      args: ['-c', attacks.map((a) => `(${a}) 2>/dev/null`).join('; ')],
      host,
      jobRoot: root,
      cwd: root,
      toolchain: [GCC],
      limits: DEFAULT_LIMITS,
      user,
    });
    // The job root is mounted at `root`, so the client path /src/include/core.h is root + that path.
    command.args = command.args.map((a) => a.replaceAll('/src/', `${root}/src/`));
    const run = spawnSync(command.file, command.args, { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(run.stdout.trim().split('\n'), ['WROTE-OUTPUT'], 'only the job directory is writable');
    assert.equal(readFileSync(join(host, 'src', 'include', 'core.h'), 'utf8'), header.toString());
    assert.equal(readFileSync(join(host, 'src', 'out.o'), 'utf8'), 'out\n');
    assert.equal(existsSync('/usr/pwned'), false);
    // The pool copy the job's file links to is intact too (it is what later jobs get).
    assert.equal(
      createHash('sha256')
        .update(readFileSync(pool.path(digest)))
        .digest('hex'),
      digest,
    );
  },
);

test(
  'a farm client cannot poison another client: writes through an input fail, reads outside the inputs are refused and named',
  needsTools('gcc', 'bwrap'),
  async (t) => {
    const dir = tempDir(t);
    const src = copyProject(dir);
    writeFileSync(join(src, 'src', 'evil.c'), '#include "/etc/hostname"\nint x;\n');
    writeFileSync(join(src, 'src', 'ok.c'), '#include "core.h"\nint y;\n');
    const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', evil: 'client', dev: 'client' });
    const syncer = await startSyncer(t, homes.syncer as string, [src]);
    const worker = await startWorker(t, homes.w1 as string, syncer.url, 2);
    const evil = new MtlsClient(syncer.url, loadIdentity(homes.evil as string));
    t.after(() => evil.close());

    // 1. Overwrite a shared header through the dependency file (it ran as root and rewrote the store blob).
    const poison = await submit(
      evil,
      job(src, ['-Iinclude', '-c', 'src/ok.c', '-o', 'ok.o', '-MD', '-MF', 'include/core.h']),
    );
    assert.ok(
      poison.status !== 'done' || poison.exitCode !== 0,
      `the job could not write the input: ${JSON.stringify(poison).slice(0, 400)}`,
    );
    // 2. Read a file of the worker's machine from a source.
    const peek = await submit(evil, job(src, ['-c', 'src/evil.c', '-o', 'evil.o']));
    assert.equal(peek.status, 'failed', JSON.stringify(peek));
    assert.match((peek as { reason: string }).reason, /\/etc\/hostname.*not among its inputs/);
    // 3. Escape the job directory with the working directory.
    const climb = await submit(evil, job(`/../../..${src}`, ['-Iinclude', '-c', 'src/ok.c', '-o', 'escaped.o']));
    assert.equal(climb.status, 'done', JSON.stringify(climb));
    assert.equal(climb.exitCode, 0, climb.stderr);
    assert.deepEqual(
      climb.outputs.map((o) => o.path),
      [`${src}/escaped.o`],
      'the output lands in the normalised directory',
    );
    assert.deepEqual(
      readdirSync(join(homes.w1 as string, 'sandbox')).sort(),
      ['inputs', 'jobs'],
      'nothing was written beside the job directories',
    );

    // An ordinary client's build is still byte-identical to plain gcc.
    const plain = join(dir, 'plain');
    assert.equal((await runCommand('make', ['-C', src, '-j2', `BUILD=${plain}`, 'objs'])).code, 0);
    const farm = join(dir, 'farm');
    const built = await runCommand(
      'make',
      ['-C', src, '-j4', `BUILD=${farm}`, `CC=${accelCc(homes.dev as string, 'gcc')}`, 'objs'],
      {
        env: { ...process.env, ACCEL_FARM_SYNCER: syncer.url },
      },
    );
    assert.equal(built.code, 0, built.stderr);
    assert.deepEqual(objectFiles(farm), objectFiles(plain));
    await worker.stop();
  },
);

test('a worker refuses to start without its sandbox unless --unsandboxed, and sweeps a killed worker’s job directories', async (t) => {
  const dir = tempDir(t);
  const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker' });
  const syncer = await startSyncer(t, homes.syncer as string, []);
  const w1 = homes.w1 as string;
  // No bwrap or prlimit on PATH: no sandbox.
  const bare = await runAccel(['--home', w1, 'worker', '--syncer', syncer.url, '--status-port', '0'], {
    env: { PATH: join(dir, 'empty-bin') },
  });
  assert.equal(bare.code, 1, bare.stderr);
  assert.match(bare.stderr, /ACCEL_WORKER_NO_SANDBOX/);
  assert.match(bare.stderr, /--unsandboxed/);

  const stale = join(w1, 'sandbox', 'jobs', 'job-999999999-abcdef');
  mkdirSync(join(stale, 'tmp'), { recursive: true });
  const open = await startAccel(
    t,
    ['--home', w1, 'worker', '--cores', '1', '--syncer', syncer.url, '--status-port', '0', '--unsandboxed'],
    /status on (https:\/\/\S+)\/status/,
  );
  assert.match(open.stderr(), /WITHOUT A SANDBOX/);
  assert.equal(existsSync(stale), false, "a dead worker's job directory is removed at start");
  await open.stop();
});

test('kill -9 of a worker takes its running compilers with it', needsTools('gcc', 'bwrap'), async (t) => {
  const dir = tempDir(t);
  const src = copyProject(dir);
  const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', dev: 'client' });
  const syncer = await startSyncer(t, homes.syncer as string, [src]);
  const marker = 31.4159;
  const worker = await startWorker(t, homes.w1 as string, syncer.url, 2, {
    PATH: `${slowCompilers(dir, marker)}:${process.env.PATH}`,
  });
  const dev = new MtlsClient(syncer.url, loadIdentity(homes.dev as string));
  t.after(() => dev.close());
  const pending = submit(dev, job(src, ['-Iinclude', '-c', 'src/main.c', '-o', 'main.o'])).catch(() => undefined);
  const sleeping = () => spawnSync('pgrep', ['-f', `sleep ${marker}`], { encoding: 'utf8' }).stdout.trim();
  await until('the compile running', async () => sleeping() !== '');
  await worker.stop('SIGKILL');
  await until('no compiler left', async () => sleeping() === '');
  void pending;
});

test(
  'roles both ways: a client refuses a server that is not the syncer, and worker ids match whole',
  needsTools('gcc', 'bwrap'),
  async (t) => {
    const dir = tempDir(t);
    const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', 'w1-evil': 'worker', dev: 'client' });
    const syncer = await startSyncer(t, homes.syncer as string, []);
    const worker = await startWorker(t, homes['w1-evil'] as string, syncer.url, 1);
    // A worker's status server completes TLS with a certificate of the same CA: not good enough for a syncer.
    const status = await runAccel(['--home', homes.dev as string, 'farm', 'status', '--syncer', worker.url]);
    assert.equal(status.code, 1, status.stderr);
    assert.match(status.stderr, /worker certificate \(w1-evil\), not a syncer's/);
    assert.doesNotMatch(status.stderr, /internal/i);

    const w1 = new MtlsClient(syncer.url, loadIdentity(homes.w1 as string));
    t.after(() => w1.close());
    const theirs = await w1.json<{ code: string }>('POST', '/jobs/some-job/heartbeat?worker=w1-evil-0123abcd');
    assert.equal(theirs.status, 403, 'the certificate w1 cannot act for the worker of the certificate w1-evil');
    assert.equal(theirs.value.code, 'ACCEL_FARM_ID_REFUSED');
    const own = await w1.json<{ ok: boolean }>('POST', '/jobs/some-job/heartbeat?worker=w1-0123abcd');
    assert.equal(own.status, 410, 'its own id is accepted (the job is unknown)');
  },
);
