import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AssignmentSchema, BadMessage, parseMessage } from '../../src/farm/protocol.ts';
import { MtlsClient } from '../../src/net/client.ts';
import { loadIdentity } from '../../src/net/tls-identity.ts';
import { tempDir } from '../helpers.ts';
import { farmCerts, startSyncer } from './farm-harness.ts';

const JOB = { compiler: 'gcc', toolchain: 'x', cwd: '/src', args: ['-c', 'a.c'], env: {}, startTimeoutMs: 1000 };
const WORKER = 'w1-0123abcd';
const REPORT = {
  id: WORKER,
  name: 'w1',
  cores: 1,
  running: 0,
  done: 0,
  failed: 0,
  toolchains: [],
  blobsFetched: 0,
  statusUrl: '',
};

test('every syncer endpoint answers a malformed body with 400 naming the field', async (t) => {
  const dir = tempDir(t);
  const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', dev: 'client' });
  const syncer = await startSyncer(t, homes.syncer as string, []);
  const client = new MtlsClient(syncer.url, loadIdentity(homes.dev as string));
  const worker = new MtlsClient(syncer.url, loadIdentity(homes.w1 as string));
  t.after(() => {
    client.close();
    worker.close();
  });
  const cases: [MtlsClient, string, unknown, RegExp][] = [
    [client, '/jobs', 'not json', /not JSON|JSON/i],
    [client, '/jobs', [], /job: \(body\)/],
    [client, '/jobs', { ...JOB, args: 'rm -rf /' }, /job: args: /],
    [client, '/jobs', { ...JOB, args: [1] }, /job: args\.0: /],
    [client, '/jobs', { ...JOB, cwd: 7 }, /job: cwd: /],
    [client, '/jobs', { ...JOB, env: { LANG: 5 } }, /job: env\.LANG: /],
    [client, '/jobs', { ...JOB, startTimeoutMs: -1 }, /job: startTimeoutMs: /],
    [client, '/jobs', { ...JOB, shell: '/bin/sh' }, /job: .*shell/],
    [client, '/tree/refresh', { paths: 'all' }, /tree refresh: paths: /],
    [client, '/blobs/missing', { digests: {} }, /missing blobs: digests: /],
    [worker, '/work', { ...REPORT, id: 5 }, /worker report: id: /],
    [worker, '/work', { ...REPORT, toolchains: 'gcc' }, /worker report: toolchains: /],
    [worker, '/work', { ...REPORT, cores: 1e9 }, /worker report: cores: /],
    [worker, `/jobs/j1/result?worker=${WORKER}`, { status: 'done' }, /job result: /],
    [worker, `/jobs/j1/result?worker=${WORKER}`, { status: 'pwned' }, /job result: status: /],
    [
      worker,
      `/jobs/j1/result?worker=${WORKER}`,
      { status: 'failed', reason: 'x'.repeat(2 << 20) },
      /job result: reason: /,
    ],
  ];
  for (const [peer, path, body, message] of cases) {
    const res = await peer.request('POST', path, typeof body === 'string' ? body : JSON.stringify(body));
    const answer = res.body.toString();
    assert.equal(res.status, 400, `${path} ${JSON.stringify(body).slice(0, 80)}: ${res.status} ${answer}`);
    assert.match(answer, /ACCEL_FARM_BAD_(REQUEST|JOB)/);
    assert.match(JSON.parse(answer).message, message, `${path} ${JSON.stringify(body).slice(0, 80)}`);
  }
  // The well-formed ones still work.
  const ok = await client.json<{ manifest: string }>('POST', '/tree/refresh', {});
  assert.equal(ok.status, 200);
});

test('a worker parses the assignment it is handed instead of trusting it', () => {
  const good = { id: 'j1', spec: JOB, manifest: 'a'.repeat(64), leaseMs: 1000 };
  assert.equal(parseMessage(AssignmentSchema, good, 'assignment').id, 'j1');
  assert.throws(
    () => parseMessage(AssignmentSchema, { ...good, spec: { ...JOB, args: '-fplugin=x' } }, 'assignment'),
    (err: unknown) => err instanceof BadMessage && err.field === 'spec.args',
  );
  assert.throws(
    () => parseMessage(AssignmentSchema, { ...good, manifest: '../../etc' }, 'assignment'),
    (err: unknown) => err instanceof BadMessage && err.field === 'manifest',
  );
});
