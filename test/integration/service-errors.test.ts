import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { listFiles, runAccel, tempDir } from '../helpers.ts';
import { farmCerts } from './farm-harness.ts';

/** A port something else already listens on, for as long as the test runs. */
async function busyPort(t: Parameters<typeof tempDir>[0]): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  return (server.address() as { port: number }).port;
}

// A server that hangs after its error (the syncer's watchers kept it alive) fails by the test's timeout.
test('servers and their clients: a bad port, address or URL, or a port in use, exits 2 and leaves nothing', {
  timeout: 120_000,
}, async (t) => {
  const dir = tempDir(t);
  const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', dev: 'client' });
  const busy = await busyPort(t);
  const cases: [string, string[], RegExp][] = [
    ['syncer', ['syncer', '--port', '99999'], /--port must be a port number.*'99999'.*ACCEL_USAGE_BAD_PORT/],
    ['syncer', ['syncer', '--port', 'abc'], /--port must be a port number.*'abc'/],
    ['syncer', ['syncer', '--bind', 'nonsense'], /--bind must be an IP address.*'nonsense'.*ACCEL_USAGE_BAD_ADDRESS/],
    [
      'syncer',
      ['syncer', '--dir', dir, '--port', String(busy)],
      /127\.0\.0\.1:\d+ is already in use.*ACCEL_NET_PORT_IN_USE/,
    ],
    [
      'syncer',
      ['syncer', '--port', '0', '--reapi-port', String(busy)],
      /127\.0\.0\.1:\d+ \(the REAPI port\) is already in use.*ACCEL_NET_PORT_IN_USE/,
    ],
    ['syncer', ['syncer', '--reapi-port', 'abc'], /--reapi-port must be a port number.*'abc'/],
    [
      'syncer',
      ['syncer', '--reapi-run', 'everything'],
      /--reapi-run "everything": expected compilers or any.*ACCEL_USAGE_BAD_VALUE/,
    ],
    [
      'dev',
      ['farm', 'config', 'bazel', '--reapi', 'grpcs://127.0.0.1:1', '--jobs', '0'],
      /--jobs 0: expected a whole number from 1.*ACCEL_USAGE_BAD_NUMBER/,
    ],
    ['dev', ['farm', 'config', 'bazel', '--reapi', 'http://x:1'], /--reapi must look like grpcs:\/\/HOST:PORT/],
    ['dev', ['farm', 'config', 'make'], /no farm config for 'make'.*ACCEL_USAGE_BAD_TOOL/],
    ['w1', ['worker', '--syncer', '127.0.0.1:5999'], /--syncer must be an https URL.*ACCEL_USAGE_BAD_URL/],
    ['dev', ['mirror', 'serve', '--port', String(busy)], /127\.0\.0\.1:\d+ is already in use.*ACCEL_NET_PORT_IN_USE/],
    ['dev', ['mirror', 'serve', '--port', '99999'], /--port must be a port number/],
    ['dev', ['mirror', 'serve', '--port', 'abc'], /--port must be a port number.*'abc'/],
    ['dev', ['mirror', 'serve', '--bind', 'nonsense'], /--bind must be an IP address/],
    ['w1', ['worker', '--syncer', 'https://127.0.0.1:5999', '--status-port', '-1'], /--status-port must be a port/],
    ['dev', ['farm', 'status', '--syncer', 'notaurl'], /--syncer must be an https URL, not 'notaurl'/],
  ];
  for (const [who, args, message] of cases) {
    const home = homes[who] as string;
    const before = listFiles(home);
    const r = await runAccel(['--home', home, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr.split('\n')[0] as string, message, args.join(' '));
    assert.doesNotMatch(r.stderr, /internal|\n\s+at /, `${args.join(' ')}: no stack trace`);
    // The store may keep what it hashed (the syncer hashes its tree before it listens), and the mirror its
    // cache token (made once, kept for good): no pid, secret or
    // temp file, no half-made state.
    assert.deepEqual(
      listFiles(home).filter((f) => !before.includes(f) && !/^(index\.db|blobs\/|mirror-cache\.token$)/.test(f)),
      [],
      `${args.join(' ')} left no files`,
    );
  }
});
