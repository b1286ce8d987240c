import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JobResult, JobSpec, WorkerReport } from '../../src/farm/protocol.ts';
import { JobQueue } from '../../src/farm/queue.ts';

const spec = (toolchain = 'gcc 12'): JobSpec => ({
  compiler: 'gcc',
  toolchain,
  cwd: '/p',
  args: ['-c', 'a.c'],
  env: {},
  startTimeoutMs: 60_000,
});
const worker = (id: string, toolchains = ['gcc 12']): WorkerReport => ({
  id,
  name: id,
  cores: 1,
  running: 0,
  done: 0,
  failed: 0,
  toolchains,
  blobsFetched: 0,
  statusUrl: '',
});
const done: JobResult = {
  status: 'done',
  exitCode: 0,
  stdout: '',
  stderr: '',
  outputs: [],
  inputs: [],
  manifest: 'm',
  worker: 'w',
};

test('queue: a worker with another toolchain does not get the job, and that is counted once per worker', async (t) => {
  const q = new JobQueue({ leaseMs: 60_000, manifest: () => 'm' });
  t.after(() => q.close());
  const job = q.submit(spec('gcc 12'));
  assert.equal(await q.take(worker('clang-box', ['clang 16']), 10), undefined);
  assert.equal(await q.take(worker('clang-box', ['clang 16']), 10), undefined);
  assert.equal(q.stats.toolchainMismatches, 1);
  const assignment = await q.take(worker('gcc-box'), 10);
  assert.equal(assignment?.id, job.id);
  assert.equal(assignment?.manifest, 'm');
  assert.ok(q.complete(job.id, 'gcc-box', done));
  assert.deepEqual(await job.result, done);
});

test('queue: a waiting worker gets a new job at once; an expired lease requeues it; the late result is refused', async (t) => {
  const q = new JobQueue({ leaseMs: 150, manifest: () => 'm' });
  t.after(() => q.close());
  const waiting = q.take(worker('a'), 60_000);
  const job = q.submit(spec());
  assert.equal((await waiting)?.id, job.id);
  // Worker a never renews its lease: the job goes back and worker b takes it.
  const again = await q.take(worker('b'), 60_000);
  assert.equal(again?.id, job.id);
  assert.ok(q.stats.leaseExpiries >= 1);
  assert.equal(q.complete(job.id, 'a', done), false, 'the old holder cannot complete it');
  assert.equal(q.stats.lateResults, 1);
  assert.ok(q.complete(job.id, 'b', done));
  assert.equal(q.complete(job.id, 'b', done), false, 'a result is accepted once');
  assert.equal((await job.result).status, 'done');
  assert.equal(q.stats.completed, 1);
});

test('queue: infrastructure failures are retried, then reported; not-started jobs come back to the client', async (t) => {
  const q = new JobQueue({ leaseMs: 60_000, manifest: () => 'm' });
  t.after(() => q.close());
  const job = q.submit(spec());
  for (let i = 0; i < 3; i++) {
    const a = await q.take(worker('w'), 10);
    assert.equal(a?.id, job.id);
    q.complete(job.id, 'w', { status: 'failed', reason: 'disk full' });
  }
  assert.deepEqual(await job.result, { status: 'failed', reason: 'disk full' });
  assert.equal(q.stats.requeued, 2);
  const lonely = q.submit({ ...spec('nobody has this'), startTimeoutMs: 20 });
  assert.deepEqual(await lonely.result, { status: 'not-started' });
  assert.equal(q.stats.notStarted, 1);
});
