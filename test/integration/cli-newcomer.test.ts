// What a newcomer types in the first hour (issue 17): global flags after the subcommand, homes that cannot
// work, repeatable options, counts, and the commands that must refuse rather than do something silently.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildProgram } from '../../src/cli/program.ts';
import { Runner } from '../../src/cli/runner.ts';
import {
  cleanEnv,
  failed,
  MAIN,
  needsTools,
  ok,
  ROOT,
  runAccel,
  runCommand,
  sha256,
  tempDir,
  unprivileged,
  until,
} from '../helpers.ts';

test('global flags work anywhere before --, as the docs write them', async (t) => {
  const home = tempDir(t);
  const forms = [
    ['cc', '--stats', '--json'],
    ['version', '--json'],
    ['store', 'info', '-q', '--json'],
    ['store', '--json', 'info'],
    ['--json', 'store', 'info'],
    ['conda', 'builds', '--json'],
    ['mirror', 'apt', 'epochs', '--json'],
  ];
  for (const args of forms) {
    const r = await runAccel(['--home', home, ...args]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.doesNotThrow(() => JSON.parse(r.stdout.toString()), `${args.join(' ')} printed JSON`);
  }
  // --home after the subcommand is the home that is used.
  const other = tempDir(t);
  const info = JSON.parse(ok(await runAccel(['store', 'info', '--home', other, '--json'])));
  assert.equal(info.home, other);
  // After `--` everything is the compiler's: `-v` reaches gcc, not accel's --verbose.
  const r = await runAccel(['--home', home, 'cc', '--', 'sh', '-c', 'echo "$@"', 'sh', '--json', '-v']);
  assert.equal(r.stdout.toString(), '--json -v\n');
});

test("every command's help lists the global options", async () => {
  const program = await buildProgram(new Runner(), []);
  const walk = (cmd: typeof program, path: string[]): string[][] => [
    path,
    ...cmd.commands.flatMap((c) => walk(c as typeof program, [...path, c.name()])),
  ];
  const paths = walk(program, []).filter((p) => p.length > 0);
  assert.ok(paths.length > 30, `the whole tree (${paths.length} commands)`);
  for (const path of paths) {
    let cmd = program;
    for (const name of path) cmd = cmd.commands.find((c) => c.name() === name) as typeof program;
    const help = cmd.helpInformation();
    assert.match(help, /Global Options:/, `accel ${path.join(' ')} --help`);
    for (const flag of ['--home <dir>', '--json', '-v, --verbose', '-q, --quiet']) {
      assert.ok(help.includes(flag), `accel ${path.join(' ')} --help lists ${flag}`);
    }
  }
  // And through the CLI, as a user sees it.
  const r = await runAccel(['mirror', 'apt', 'epochs', '--help']);
  assert.match(r.stdout.toString(), /Global Options:[\s\S]*--home <dir>/);
});

test('a home where no directory can be made is a clear error at once, not a spin', async (t) => {
  const started = Date.now();
  const r = await runAccel(['--home', '/proc/accel-nope', 'store', 'info']);
  failed(r, 1, 'ACCEL_STORE_NOT_WRITABLE');
  assert.ok(Date.now() - started < 20_000, 'it returned');
  const file = join(tempDir(t), 'a-file');
  writeFileSync(file, 'x');
  failed(await runAccel(['--home', join(file, 'store'), 'store', 'info']), 1, 'ACCEL_STORE_NOT_WRITABLE');
  failed(await runAccel(['--home', file, 'store', 'info']), 1, 'ACCEL_STORE_NOT_WRITABLE');
});

test('a read-only home: version, help and mirror config still work (from source)', async (t) => {
  const parent = tempDir(t);
  chmodSync(parent, 0o755);
  const home = join(parent, 'ro');
  mkdirSync(home, { mode: 0o555 });
  chmodSync(home, 0o555);
  const user = unprivileged();
  if (!user) t.diagnostic('not root: relying on the directory mode alone');
  for (const args of [['version'], ['--help'], ['cc', '--help'], ['mirror', 'config', 'bazel']]) {
    const r = await runAccel(['--home', home, ...args], { user, env: { HOME: parent } });
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  // The bazel config could not be written into the home: the text says where to save it instead.
  const bazel = await runAccel(['--home', home, 'mirror', 'config', 'bazel'], { user, env: { HOME: parent } });
  if (user) assert.match(bazel.stdout.toString(), /save as /);
});

test('mirror prefetch: --allow is repeatable and never swallows the files after it; -j must be a count', async (t) => {
  const home = tempDir(t);
  const body = Buffer.from('upstream bytes\n');
  const server = createServer((_req, res) => res.end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const origin = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const list = join(tempDir(t), 'urls.txt');
  writeFileSync(list, `http://${origin}/a.tar.gz ${sha256(body)}\n`);
  const r = await runAccel(['--home', home, 'mirror', 'prefetch', '--allow', origin, list]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.toString(), /prefetched 1 files/);
  // The comma form and the repeated form mean the same.
  const again = await runAccel(['--home', home, 'mirror', 'prefetch', '--allow', `example.invalid,${origin}`, list]);
  assert.match(again.stdout.toString(), /1 already cached/);
  for (const bad of ['0', 'abc', '2.5', '-3']) {
    const j = await runAccel(['--home', home, 'mirror', 'prefetch', '-j', bad, list]);
    failed(j, 2, 'ACCEL_USAGE_BAD_COUNT');
    assert.match(j.stderr, new RegExp(`--jobs must be a whole number .*'${bad.replace('.', '\\.')}'`));
  }
  failed(
    await runAccel(['--home', home, 'worker', '--cores', '0', '--syncer', 'https://127.0.0.1:1']),
    2,
    'ACCEL_USAGE_BAD_CORES',
  );
  failed(await runAccel(['--home', home, 'conda', 'build', '-j', 'x', ROOT]), 2, 'ACCEL_USAGE_JOBS');
});

test('certs issue refuses to replace a certificate unless --force', async (t) => {
  const home = tempDir(t);
  ok(await runAccel(['--home', home, 'certs', 'init']));
  ok(await runAccel(['--home', home, 'certs', 'issue', 'build1', '--role', 'worker']));
  const crt = join(home, 'certs', 'issued', 'build1.crt');
  const key = join(home, 'certs', 'issued', 'build1.key');
  const before = [readFileSync(crt), readFileSync(key)];
  const again = await runAccel(['--home', home, 'certs', 'issue', 'build1', '--role', 'worker']);
  failed(again, 1, 'ACCEL_CERTS_EXISTS');
  assert.match(again.stderr, /--force/);
  assert.deepEqual([readFileSync(crt), readFileSync(key)], before, 'the certificate and key are untouched');
  ok(await runAccel(['--home', home, 'certs', 'issue', 'build1', '--role', 'worker', '--force']));
  assert.notDeepEqual(readFileSync(key), before[1], '--force issues a new key');
});

test('mirror apt unpin of a suite that is not pinned is an error; config apt --save merges into config.json', async (t) => {
  const home = tempDir(t);
  const r = await runAccel(['--home', home, 'mirror', 'apt', 'unpin', 'debian', 'bookworm']);
  failed(r, 1, 'ACCEL_APT_NOT_PINNED');
  assert.match(r.stderr, /no suite is pinned/);

  const etc = tempDir(t);
  mkdirSync(join(etc, 'sources.list.d'));
  writeFileSync(join(etc, 'sources.list'), 'deb http://127.0.0.1:9/debian bookworm main\n');
  writeFileSync(join(home, 'config.json'), JSON.stringify({ store: { maxSize: '2G' }, mirror: { ttl: 60 } }));
  const env = { ACCEL_APT_ETC: etc };
  ok(await runAccel(['--home', home, 'mirror', 'config', 'apt', '--save'], { env }));
  const saved = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8'));
  assert.equal(saved.store.maxSize, '2G', 'other settings kept');
  assert.equal(saved.mirror.ttl, 60);
  assert.deepEqual(Object.values(saved.mirror.remaps), [['http://127.0.0.1:9/debian']]);
  // Running it again changes nothing.
  const text = readFileSync(join(home, 'config.json'), 'utf8');
  ok(await runAccel(['--home', home, 'mirror', 'config', 'apt', '--save'], { env }));
  assert.equal(readFileSync(join(home, 'config.json'), 'utf8'), text);
});

test('mirror config bazel: the .bazelrc line it prints names a file that exists', async (t) => {
  const home = tempDir(t);
  const out = ok(await runAccel(['--home', home, 'mirror', 'config', 'bazel', '--url', 'http://127.0.0.1:8123']));
  const line = out.split('\n').find((l) => l.startsWith('common --experimental_downloader_config='));
  assert.ok(line, out);
  const file = line.slice('common --experimental_downloader_config='.length);
  assert.ok(existsSync(file), `${file} exists`);
  assert.match(readFileSync(file, 'utf8'), /^rewrite \(\.\*\) http:\/\/127\.0\.0\.1:8123\/https\/\$1$/m);
});

test('scripts/setup.sh: nothing to do when all is installed; otherwise root installs, and a user is told what to run', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  // A stand-in for the package database (the outside world here): every package installed, or none.
  const fake = (installed: boolean) => {
    writeFileSync(join(bin, 'dpkg-query'), `#!/bin/sh\n${installed ? "printf 'install ok installed'" : 'exit 1'}\n`);
    writeFileSync(
      join(bin, 'apt-get'),
      `#!/bin/sh\necho "apt-get $*" >> ${join(dir, 'apt.log')}\n[ -x ${join(dir, 'policy-rc.d')} ] && echo "services held" >> ${join(dir, 'apt.log')}\nexit 0\n`,
    );
    chmodSync(join(bin, 'dpkg-query'), 0o755);
    chmodSync(join(bin, 'apt-get'), 0o755);
  };
  const policy = join(dir, 'policy-rc.d');
  const run = (args: string[], user?: { uid: number; gid: number }) =>
    runCommand('bash', [join(ROOT, 'scripts', 'setup.sh'), ...args], {
      env: { PATH: `${bin}:/usr/bin:/bin`, SETUP_POLICY_RC_D: policy },
      user,
    });
  fake(true);
  const none = await run(['--test']);
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stdout.toString(), /packages of the 'test' profile are installed/);
  assert.equal(existsSync(join(dir, 'apt.log')), false, 'apt-get did not run');

  fake(false);
  const user = unprivileged();
  if (user) {
    const asUser = await run([], user);
    assert.equal(asUser.code, 1);
    assert.match(asUser.stderr, /apt-get install -y --no-install-recommends gcc libc6-dev binutils/);
    assert.equal(existsSync(join(dir, 'apt.log')), false);
    const asRoot = await run([]);
    assert.equal(asRoot.code, 0, asRoot.stderr);
    assert.match(readFileSync(join(dir, 'apt.log'), 'utf8'), /update[\s\S]*install .*gcc libc6-dev binutils/);
    if (!existsSync('/run/systemd/system')) {
      assert.match(readFileSync(join(dir, 'apt.log'), 'utf8'), /services held/, 'no service starts without an init');
    }
    assert.equal(existsSync(policy), false, 'the service-start policy is removed after the install');
  }
  const list = spawnSync('bash', [join(ROOT, 'scripts', 'setup.sh'), '--test', '--list'], { encoding: 'utf8' });
  for (const p of ['qemu-user-static', 'bubblewrap', 'gcc-aarch64-linux-gnu', 'curl']) {
    assert.ok(list.stdout.split('\n').includes(p), `${p} in the test profile`);
  }
});

test('a worker whose syncer is down says so at once, and not once per poll', async (t) => {
  const dir = tempDir(t);
  const ca = join(dir, 'ca');
  const home = join(dir, 'worker');
  ok(await runAccel(['--home', ca, 'certs', 'init']));
  ok(await runAccel(['--home', ca, 'certs', 'issue', 'w1', '--role', 'worker']));
  ok(await runAccel(['--home', ca, 'certs', 'bundle', 'w1', '-o', join(dir, 'w1.json')]));
  ok(await runAccel(['--home', home, 'certs', 'install', join(dir, 'w1.json')]));
  // A port nobody listens on: take one, then close it.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const child = spawn(
    process.execPath,
    [
      MAIN,
      '--home',
      home,
      'worker',
      '--unsandboxed',
      '--cores',
      '4',
      '--status-port',
      '0',
      '--syncer',
      `https://127.0.0.1:${port}`,
    ],
    { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const started = Date.now();
  await until('the worker says the syncer is down', () => /cannot reach the syncer/.test(stderr), 10_000);
  t.diagnostic(`said after ${Date.now() - started} ms`);
  assert.match(stderr, new RegExp(`cannot reach the syncer at https://127\\.0\\.0\\.1:${port} \\(.*\\), retrying`));
  // Four slots polling every half second for 3 s: still one line, until 30 s have passed.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.equal(stderr.match(/cannot reach the syncer/g)?.length, 1, stderr);
  child.kill('SIGTERM');
});

test(
  'long work shows progress on a terminal (verify, gc) and stays silent in a pipe',
  needsTools('script'),
  async (t) => {
    const home = tempDir(t);
    for (let i = 0; i < 40; i++)
      ok(await runAccel(['--home', home, 'store', 'put', '-'], { input: `blob ${i}\n`.repeat(5000) }));
    const onTerminal = async (args: string[]) => {
      const command = [process.execPath, MAIN, '--home', home, ...args].map((a) => `'${a}'`).join(' ');
      // script(1) gives the command a pseudo-terminal, as an interactive shell would.
      const r = await runCommand('script', ['-qefc', command, '/dev/null'], { env: { COLUMNS: '120' } });
      assert.equal(r.code, 0, r.stderr + r.stdout.toString());
      return r.stdout.toString();
    };
    const verify = await onTerminal(['store', 'verify']);
    assert.match(verify, /verify \[[^\]]*\] 40\/40 [\d.]+ (KiB|MiB) [\d.]+ (B|KiB|MiB|GiB)\/s/);
    assert.match(verify, /checked 40 blobs/);
    const gc = await onTerminal(['store', 'gc', '--max-size', '100K']);
    assert.match(gc, /gc: removing \[[^\]]*\] \d+\/\d+/);
    // In a pipe (CI logs, scripts) nothing but the result.
    const piped = await runAccel(['--home', home, 'store', 'verify']);
    assert.equal(piped.stderr, '');
  },
);

test('accel completion: bash completes commands, nested commands and flags from the command tree; zsh and fish scripts cover it', async (t) => {
  const dir = tempDir(t);
  const script = join(dir, 'accel.bash');
  writeFileSync(script, ok(await runAccel(['completion', 'bash'])));
  const complete = (...words: string[]) => {
    const r = spawnSync(
      'bash',
      [
        '-c',
        `source ${script}; COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _accel; printf '%s\\n' "\${COMPREPLY[@]}"`,
        'bash',
        'accel',
        ...words,
      ],
      { encoding: 'utf8', cwd: dir },
    );
    assert.equal(r.stderr, '');
    return r.stdout.split('\n').filter(Boolean);
  };
  assert.ok(complete('').includes('mirror') && complete('').includes('completion'));
  assert.deepEqual(complete('mirror', 'ap'), ['apt']);
  assert.deepEqual(complete('mirror', 'apt', ''), ['epochs', 'pin', 'unpin']);
  assert.deepEqual(complete('--home', '/tmp', 'store', 'i'), ['info'], 'a flag value is not a command');
  assert.deepEqual(complete('store', 'info', '--js'), ['--json'], 'global flags after the subcommand');
  assert.deepEqual(complete('mirror', 'prefetch', '--al'), ['--allow']);
  assert.deepEqual(complete('conda', 'build', '--keep'), ['--keep-going']);
  assert.deepEqual(complete('cc', '--', 'gc'), [], 'after -- the words are the compiler’s');

  const zsh = ok(await runAccel(['completion', 'zsh']));
  assert.match(zsh, /^#compdef accel/);
  assert.match(zsh, /bashcompinit/);
  assert.match(zsh, /complete -F _accel accel/);
  const fish = ok(await runAccel(['completion', 'fish']));
  assert.match(fish, /complete -c accel -n '__accel_at '\\''mirror apt'\\''' -a 'epochs'/);
  assert.match(fish, /complete -c accel -n '__accel_at '\\''store gc'\\''' -l max-size -r -F/);
  failed(await runAccel(['completion', 'powershell']), 2, 'ACCEL_USAGE_BAD_SHELL');
});
