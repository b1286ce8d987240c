import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { type TestContext, test } from 'node:test';
import { compileViaDaemon, daemonStatus } from '../../src/cc/daemon-client.ts';
import { daemonPaths } from '../../src/cc/protocol.ts';
import {
  ccCounters,
  failed,
  MAIN,
  NOBODY,
  nativeClientHome,
  needsTools,
  objectFiles,
  ok,
  okStderr,
  ROOT,
  runAccel,
  runCommand,
  tempDir,
  until,
} from '../helpers.ts';

const EXAMPLE = join(ROOT, 'examples', 'c-project');
const DAEMON_ENV = { ACCEL_CC_DAEMON_IDLE_TIMEOUT: '60' };

/** A home with the native client and masquerade links installed; the daemon is stopped when the test ends. */
async function setup(t: TestContext) {
  const dir = tempDir(t);
  const installed = await nativeClientHome(join(dir, 'home'));
  t.after(async () => {
    await runAccel(['--home', installed.home, 'cc', 'daemon', '--stop']);
  });
  return { dir, ...installed };
}

test(
  'daemon lifecycle: --detach twice gives one daemon; --status; accel cc -- uses it; --stop; idle time-out',
  needsTools('gcc', 'make'),
  async (t) => {
    const { dir, home } = await setup(t);
    const notRunning = await runAccel(['--home', home, 'cc', 'daemon', '--status']);
    assert.equal(notRunning.code, 1);
    assert.match(notRunning.stderr, /ACCEL_CC_DAEMON_NOT_RUNNING/);

    const first = await runAccel(['--home', home, '--json', 'cc', 'daemon', '--detach']);
    okStderr(first);
    const second = await runAccel(['--home', home, '--json', 'cc', 'daemon', '--detach']);
    okStderr(second);
    const pid = JSON.parse(first.stdout.toString()).pid as number;
    assert.equal(JSON.parse(second.stdout.toString()).pid, pid, 'the second --detach found the first daemon');
    // The socket and its directory are the owner's alone.
    const paths = daemonPaths(home);
    assert.equal(statSync(paths.dir).mode & 0o777, 0o700);
    assert.equal(statSync(paths.socket).mode & 0o777, 0o600);
    assert.equal(statSync(paths.secret).mode & 0o777, 0o600);

    writeFileSync(join(dir, 'x.c'), 'int x(void) { return 1; }\n');
    okStderr(await runAccel(['--home', home, 'cc', '--', 'gcc', '-c', 'x.c'], { cwd: dir }));
    const status = await runAccel(['--home', home, '--json', 'cc', 'daemon', '--status']);
    okStderr(status);
    assert.equal(JSON.parse(status.stdout.toString()).requests, 1, 'accel cc -- went through the daemon');

    const stop = await runAccel(['--home', home, 'cc', 'daemon', '--stop']);
    assert.match(stop.stdout.toString(), new RegExp(`stopped the cc daemon \\(pid ${pid}\\)`));
    assert.equal(existsSync(paths.pid), false);
    assert.equal(await daemonStatus(home), undefined);

    okStderr(await runAccel(['--home', home, 'cc', 'daemon', '--detach', '--idle-timeout', '0.5']));
    await until('the idle daemon to exit', () => !existsSync(paths.pid) || undefined);
    assert.equal(await daemonStatus(home), undefined);
  },
);

test(
  'kill -9 of the daemon during make -j8: the build succeeds with correct objects, and a new daemon takes over',
  needsTools('gcc', 'make'),
  async (t) => {
    const { dir, home, masq } = await setup(t);
    const src = join(dir, 'src');
    cpSync(EXAMPLE, src, { recursive: true, filter: (p) => !relative(EXAMPLE, p).startsWith('build') });
    const plain = join(dir, 'plain');
    okStderr(await runCommand('make', ['-C', src, '-j8', `BUILD=${plain}`]));

    const build = join(dir, 'build');
    const through = [`CC=${join(masq, 'gcc')}`, `CXX=${join(masq, 'g++')}`];
    const makeRun = runCommand('make', ['-C', src, '-j8', `BUILD=${build}`, ...through], {
      env: DAEMON_ENV,
    });
    // Kill it while compiles are in flight, so some clients lose their daemon mid-request.
    const victim = await until('a compile in the daemon', async () => {
      const s = await daemonStatus(home, 1000);
      return s && s.active > 0 ? s.pid : undefined;
    });
    process.kill(victim, 'SIGKILL');
    const result = await makeRun;
    const stderr = okStderr(result);
    assert.match(stderr, /accel-cc: the daemon stopped answering; running gcc without the cache/);

    const built = objectFiles(build);
    assert.equal(built.size, objectFiles(plain).size);
    for (const [name, bytes] of objectFiles(plain)) assert.ok(built.get(name)?.equals(bytes), `${name} differs`);
    okStderr(await runCommand('make', ['-C', src, `BUILD=${build}`, ...through, 'check'], { env: DAEMON_ENV }));
    // The next client started a fresh daemon over the dead one's pid lock and socket.
    const after = await daemonStatus(home);
    assert.ok(after && after.pid !== victim, 'a new daemon runs');
  },
);

test(
  'a client killed mid-compile: the compile stops and its half-written output is removed; nothing is cached',
  needsTools('gcc', 'make'),
  async (t) => {
    const { dir, client, home } = await setup(t);
    // A gcc that writes part of its output, then stalls: killing the client now must not leave that part.
    const bin = join(dir, 'slowbin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'gcc'),
      `#!/bin/sh
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
case " $* " in *" -c "*) [ -z "$STALL" ] || { head -c 100 /bin/sh > "$out"; sleep 30; } ;; esac
exec /usr/bin/gcc "$@"
`,
    );
    chmodSync(join(bin, 'gcc'), 0o755);
    writeFileSync(join(dir, 'x.c'), 'int x(void) { return 3; }\n');
    const env = { ...process.env, ...DAEMON_ENV, PATH: `${bin}:${process.env.PATH}`, STALL: '1' };
    const child = spawn(client, ['gcc', '-c', 'x.c', '-o', 'x.o'], { cwd: dir, env, stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    await until('the half-written output', () => existsSync(join(dir, 'x.o')) || undefined);
    child.kill('SIGKILL');
    await exited;
    await until('the abandoned output to be removed', () => !existsSync(join(dir, 'x.o')) || undefined);
    await until('the daemon to be idle', async () => ((await daemonStatus(home))?.active === 0 ? true : undefined));

    // The daemon still serves, and the abandoned compile left no cache entry: this one is a miss.
    okStderr(await runCommand(client, ['gcc', '-c', 'x.c', '-o', 'x.o'], { cwd: dir, env: { ...env, STALL: '' } }));
    const counters = await ccCounters(home);
    assert.equal(counters.miss, 1);
    assert.equal(counters.hit, undefined);
    okStderr(await runCommand('gcc', ['-c', 'x.c', '-o', 'plain.o'], { cwd: dir }));
    assert.ok(readFileSync(join(dir, 'x.o')).equals(readFileSync(join(dir, 'plain.o'))));
  },
);

test(
  "outputs get the client's umask, not the daemon's: on a miss and on a hit",
  needsTools('gcc', 'make'),
  async (t) => {
    const { dir, client, home } = await setup(t);
    writeFileSync(join(dir, 'x.c'), 'int x(void) { return 7; }\n');
    // The daemon runs with umask 022; the first compile (a miss) comes from a client with 077.
    okStderr(
      await runCommand('sh', [
        '-c',
        `umask 022; exec "$@"`,
        'sh',
        process.execPath,
        MAIN,
        '--home',
        home,
        'cc',
        'daemon',
        '--detach',
      ]),
    );
    for (const [mask, out, mode] of [
      ['077', 'a.o', 0o600],
      ['002', 'b.o', 0o664],
      ['022', 'c.o', 0o644],
    ] as const) {
      okStderr(
        await runCommand('sh', ['-c', `umask ${mask}; exec "$0" gcc -c x.c -o ${out}`, client], {
          cwd: dir,
          env: DAEMON_ENV,
        }),
      );
      assert.equal(statSync(join(dir, out)).mode & 0o777, mode, `${out} under umask ${mask}`);
    }
    const counters = await ccCounters(home);
    assert.deepEqual(counters, { hit: 2, miss: 1 });
  },
);

test(
  'a daemon that never answers: the client gives up after its silence time-out and runs gcc itself',
  needsTools('gcc', 'make'),
  async (t) => {
    const { dir, client, home } = await setup(t);
    const paths = daemonPaths(home);
    mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
    writeFileSync(paths.secret, 'x'.repeat(64), { mode: 0o600 });
    const hung = createServer(() => {}); // accepts, reads nothing, says nothing
    await new Promise<void>((r) => hung.listen(paths.socket, r));
    t.after(() => {
      hung.close();
      rmSync(paths.socket, { force: true });
    });
    writeFileSync(join(dir, 'x.c'), 'int x(void) { return 4; }\n');
    const r = await runCommand(client, ['gcc', '-c', 'x.c', '-o', 'x.o'], {
      cwd: dir,
      env: { ACCEL_CC_SILENCE_MS: '300' },
    });
    assert.match(okStderr(r), /the daemon stopped answering; running gcc without the cache/);
    okStderr(await runCommand('gcc', ['-c', 'x.c', '-o', 'plain.o'], { cwd: dir }));
    assert.ok(readFileSync(join(dir, 'x.o')).equals(readFileSync(join(dir, 'plain.o'))));
  },
);

test(
  'no daemon and none can start (accel missing beside the client): the compile still runs',
  needsTools('gcc', 'make'),
  async (t) => {
    const { dir, client, home } = await setup(t);
    rmSync(join(home, 'bin', 'accel'));
    writeFileSync(join(dir, 'x.c'), 'int x(void) { return 5; }\n');
    const r = await runCommand(client, ['gcc', '-c', 'x.c', '-o', 'x.o'], {
      cwd: dir,
      env: { ACCEL_CC_START_TIMEOUT_MS: '200' },
    });
    assert.match(okStderr(r), /accel is not installed beside this client; running gcc without the cache/);
    assert.ok(existsSync(join(dir, 'x.o')));
  },
);

test('another uid cannot use the socket: refused by its permissions, and without the secret even when they are opened up', {
  skip: process.getuid?.() !== 0 && 'needs root to switch to nobody',
}, async (t) => {
  const { dir, home } = await setup(t);
  okStderr(await runAccel(['--home', home, 'cc', 'daemon', '--detach']));
  const paths = daemonPaths(home);
  chmodSync(dir, 0o755);
  chmodSync(home, 0o755);
  // What nobody sees: a connect, then a status request with a guessed secret.
  const probe = `
      const net = require('node:net');
      const body = Buffer.from('ACCEL-CC/1\\0guess\\0status\\0');
      const head = Buffer.alloc(4); head.writeUInt32LE(body.length);
      const s = net.connect(process.argv[1]);
      let got = 0;
      s.on('connect', () => s.write(Buffer.concat([head, body])));
      s.on('data', (d) => { got += d.length; });
      s.on('error', (e) => { console.log(e.code); process.exit(0); });
      s.on('close', () => console.log(got ? 'answered' : 'closed unanswered'));
      try { require('node:fs').readFileSync(process.argv[2]); console.log('secret readable'); } catch (e) { console.log('secret ' + e.code); }
    `;
  const asNobody = () =>
    runCommand(process.execPath, ['-e', probe, paths.socket, paths.secret], { user: NOBODY, cwd: '/' });
  let r = await asNobody();
  assert.match(r.stdout.toString(), /EACCES/, r.stderr);
  assert.doesNotMatch(r.stdout.toString(), /answered|secret readable/);

  // Even with the directory and socket opened to everyone, the request lacks the secret: no answer.
  chmodSync(paths.dir, 0o755);
  chmodSync(paths.socket, 0o666);
  r = await asNobody();
  assert.match(r.stdout.toString(), /secret EACCES/, r.stderr);
  assert.match(r.stdout.toString(), /closed unanswered/, r.stderr);
  assert.ok(await daemonStatus(home), 'the owner still gets answers');
});

/**
 * What a daemon killed with -9 leaves, with its pid since reused: a fresh pid file naming a live process that is
 * not a daemon, a socket file nobody listens on, and a secret.
 */
async function staleDaemonFiles(home: string, pid: number): Promise<void> {
  const paths = daemonPaths(home);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  writeFileSync(paths.pid, `${pid}\n`);
  writeFileSync(paths.secret, 'not-the-daemons-secret\n', { mode: 0o600 });
  rmSync(paths.socket, { force: true });
  // A real socket inode, left behind by a process that died without unlinking it.
  const script = `require('net').createServer().listen(${JSON.stringify(paths.socket)}, () => process.kill(process.pid, 'SIGKILL'))`;
  const r = await runCommand(process.execPath, ['-e', script]);
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  assert.ok(statSync(paths.socket).isSocket());
}

test(
  'a fresh pid file naming a live, unrelated process (a reused pid) and a stale socket do not block the daemon',
  needsTools('gcc', 'make'),
  async (t) => {
    const { dir, home, masq } = await setup(t);
    const paths = daemonPaths(home);
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    t.after(() => sleeper.kill());
    await staleDaemonFiles(home, sleeper.pid as number);

    writeFileSync(join(dir, 'x.c'), 'int x(void) { return 1; }\n');
    writeFileSync(join(dir, 'y.c'), 'int y(void) { return 2; }\n');
    // accel cc -- finds no daemon behind the socket and compiles itself.
    okStderr(await runAccel(['--home', home, 'cc', '--', 'gcc', '-c', 'x.c', '-o', 'x.o'], { cwd: dir }));
    assert.ok(existsSync(join(dir, 'x.o')));
    // The native client starts a daemon, which takes over (it used to wait 10 s for one that could never start,
    // then compile alone): the compile is the new daemon's first request.
    okStderr(
      await runCommand('gcc', ['-c', 'y.c', '-o', 'y.o'], { cwd: dir, env: { PATH: `${masq}:${process.env.PATH}` } }),
    );
    const status = await daemonStatus(home);
    assert.ok(status, 'a daemon runs');
    assert.notEqual(status.pid, sleeper.pid);
    assert.equal(status.requests, 1, 'the native client compiled through the new daemon');
    assert.equal(Number(readFileSync(paths.pid, 'utf8')), status.pid);
    assert.ok(existsSync(join(dir, 'y.o')));
    // With a daemon up, accel cc -- uses it.
    okStderr(await runAccel(['--home', home, 'cc', '--', 'gcc', '-c', 'x.c', '-o', 'x.o'], { cwd: dir }));
    assert.equal((await daemonStatus(home))?.requests, 2);
    // A second start while it runs is refused with a clear error naming it.
    const refused = await runAccel(['--home', home, 'cc', 'daemon']);
    failed(refused, 1, 'ACCEL_CC_DAEMON_RUNNING');
    assert.match(refused.stderr, new RegExp(`already runs for this home \\(pid ${status.pid}\\)`));
  },
);

test(
  'three starts at once over stale files (a reused pid): exactly one daemon, and all three report it',
  needsTools('gcc', 'make'),
  async (t) => {
    const { home } = await setup(t);
    await staleDaemonFiles(home, process.pid);
    const starts = await Promise.all(
      [1, 2, 3].map(() => runAccel(['--home', home, '--json', 'cc', 'daemon', '--detach'], { env: DAEMON_ENV })),
    );
    for (const r of starts) okStderr(r);
    const pids = starts.map((r) => JSON.parse(r.stdout.toString()).pid as number);
    const status = await daemonStatus(home);
    assert.ok(status);
    assert.deepEqual(pids, [status.pid, status.pid, status.pid]);
    assert.notEqual(status.pid, process.pid);
    // The losers give up (refused by the lock): one `accel cc daemon` process is left for this home.
    const daemons = () =>
      spawnSync('pgrep', ['-f', '--', `--home ${home} cc daemon --idle-timeout`], { encoding: 'utf8' }).stdout.trim();
    await until('the losing starts to exit', () => daemons() === String(status.pid) || undefined);
    assert.equal((await daemonStatus(home))?.pid, status.pid);
  },
);

test(
  'kill -9 of the daemon takes its running compilers with it (they would race the client compiling itself)',
  needsTools('gcc', 'make'),
  async (t) => {
    // The daemon runs every compile through runCompiler with dieWithParent: a process that does so, killed with
    // -9 mid-compile, must leave no compiler behind.
    const dir = tempDir(t);
    const marker = '291.75';
    const compiler = join(dir, 'gcc');
    writeFileSync(compiler, `#!/bin/sh\nexec sleep ${marker}\n`);
    chmodSync(compiler, 0o755);
    const script = join(dir, 'server.ts');
    writeFileSync(
      script,
      `import { runCompiler } from ${JSON.stringify(join(ROOT, 'src', 'compiler', 'run.ts'))};
const abort = new AbortController();
runCompiler(${JSON.stringify(compiler)}, ['-c', 'x.c'], { cwd: '/', env: process.env, signal: abort.signal, dieWithParent: true });
setInterval(() => {}, 1000);
`,
    );
    const server = spawn(process.execPath, [script], { stdio: 'ignore' });
    t.after(() => server.kill('SIGKILL'));
    const sleeping = () => spawnSync('pgrep', ['-f', `sleep ${marker}`], { encoding: 'utf8' }).stdout.trim();
    await until('the compile running', () => sleeping() !== '' || undefined);
    server.kill('SIGKILL');
    await until('no compiler left behind', () => sleeping() === '' || undefined, 20_000);
  },
);

/** Pids of the processes whose command line mentions `text` (zombies have none). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(text)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Whether `pid` is a live process: a zombie (dead, not yet reaped by whoever adopted it) is not. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGKILL'] as const) {
  test(
    `${signal} to the daemon mid-compile: no compiler process is left running (the driver, and cc1 under it)`,
    needsTools('gcc', 'make'),
    async (t) => {
      const { dir, home } = await setup(t);
      okStderr(await runAccel(['--home', home, 'cc', 'daemon', '--detach'], { env: DAEMON_ENV }));
      const daemon = await daemonStatus(home);
      assert.ok(daemon);
      // A compile that never ends by itself: its source includes a FIFO nobody writes, so cc1 waits to open it.
      const fifo = join(dir, 'never.h');
      ok(await runCommand('mkfifo', [fifo]));
      const source = join(dir, `slow-${signal}.c`);
      writeFileSync(source, '#include "never.h"\nint x;\n');
      t.after(() => {
        for (const pid of processesMentioning(source)) process.kill(pid, 'SIGKILL');
      });
      const answer = compileViaDaemon(home, ['gcc', '-c', source, '-o', join(dir, 'slow.o')], dir, process.env);
      const compiling = await until('cc1 waiting on the FIFO', () => {
        const pids = processesMentioning(source);
        return pids.some((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')[0]?.endsWith('cc1'))
          ? pids
          : undefined;
      });
      assert.ok(compiling.length >= 2, 'the gcc driver and its cc1');

      process.kill(daemon.pid, signal);
      await until('the daemon gone', () => !running(daemon.pid) || undefined);
      // The client is left without an answer (accel-cc then compiles itself); the compilers are gone.
      assert.equal(await answer, undefined);
      await until('no compiler left', () => processesMentioning(source).length === 0 || undefined, 20_000);
      // A process whose exit is under way has already lost its cmdline but is not a zombie yet: wait for it.
      await until('every compiler process gone', () => compiling.every((pid) => !running(pid)) || undefined, 20_000);
      assert.equal(existsSync(join(dir, 'slow.o')), false, 'no partial object');
      // And the next start finds the lock free (a kill -9 leaves the pid file, the secret and the socket).
      okStderr(await runAccel(['--home', home, 'cc', 'daemon', '--detach'], { env: DAEMON_ENV }));
      assert.notEqual((await daemonStatus(home))?.pid, daemon.pid);
    },
  );
}

test('a daemon that cannot start leaves no pid file and no secret behind', async (t) => {
  const home = join(tempDir(t), 'home');
  const paths = daemonPaths(home);
  // Something that is not a socket, and cannot be removed, where the socket goes.
  mkdirSync(join(paths.socket, 'busy'), { recursive: true });
  const r = await runAccel(['--home', home, 'cc', 'daemon']);
  assert.notEqual(r.code, 0, r.stderr);
  assert.equal(existsSync(paths.pid), false, 'no pid file');
  assert.equal(existsSync(paths.secret), false, 'no secret');
});
