// The syncer's Remote Execution API with a real gRPC client: hostile bodies and certificates, and the action
// cache shared with the mirror's /cache/ac (one store, two protocols).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { cacheToken } from '../../src/mirror/cache-token.ts';
import { type ActionResult, type Digest, msg, type Operation, services } from '../../src/reapi/proto.ts';
import { tempDir } from '../helpers.ts';
import { serveCli } from '../mirror-harness.ts';
import { farmCerts, reapiPort, startSyncer, startWorker } from './farm-harness.ts';
import { digestOf, execute, executeOps, reapiClient, unary } from './reapi-client.ts';

/** A ByteStream upload in `pieces` chunks; `finish` false leaves finish_write off (a client that died mid-way). */
function writeChunks(c: grpc.Client, name: string, data: Buffer, pieces: number, finish = true): Promise<unknown> {
  const spec = services.ByteStream.Write;
  return new Promise((resolve, reject) => {
    const s = c.makeClientStreamRequest(
      spec.path,
      spec.requestSerialize,
      spec.responseDeserialize,
      new grpc.Metadata(),
      { deadline: Date.now() + 20_000 },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    const step = Math.ceil(data.length / pieces);
    for (let at = 0; at < data.length; at += step) {
      const end = Math.min(data.length, at + step);
      s.write({
        resource_name: at === 0 ? name : '',
        write_offset: at,
        finish_write: finish && end === data.length,
        data: data.subarray(at, end),
      });
    }
    s.end();
  });
}

/** Uploads an action (command + input tree of one file) and returns its digest. */
async function putAction(c: grpc.Client, args: string[], files: Record<string, Buffer>, names?: string[]) {
  const blobs: { digest: Digest; data: Buffer }[] = [];
  const add = (data: Buffer) => {
    const digest = digestOf(data);
    blobs.push({ digest, data });
    return digest;
  };
  const entries = Object.entries(files).map(([name, data]) => ({ name, digest: add(data), is_executable: false }));
  const root = add(
    msg.Directory.encode({
      files: entries.map((e, i) => ({ ...e, name: names?.[i] ?? e.name })),
      directories: [],
      symlinks: [],
    }),
  );
  const command = add(
    msg.Command.encode({
      arguments: args,
      environment_variables: [],
      output_files: ['out.o'],
      output_directories: [],
      output_paths: ['out.o'],
      working_directory: '',
    }),
  );
  const action = add(
    msg.Action.encode({ command_digest: command, input_root_digest: root, do_not_cache: false, salt: Buffer.alloc(0) }),
  );
  const r = await unary<{ responses: { status?: { code: number } }[] }>(
    c,
    services.ContentAddressableStorage.BatchUpdateBlobs,
    {
      requests: blobs,
    },
  );
  assert.ok(
    r.responses.every((x) => (x.status?.code ?? 0) === 0),
    JSON.stringify(r),
  );
  return action;
}

test('REAPI: a compile action runs on a worker and is cached; hostile bodies, names, commands and certificates are refused, nothing half-stored', async (t) => {
  const dir = tempDir(t);
  const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', dev: 'client' });
  const syncer = await startSyncer(t, homes.syncer as string, []);
  const port = await reapiPort(syncer);
  await startWorker(t, homes.w1 as string, syncer.url, 2);
  const dev = reapiClient(t, port, homes.dev);

  const caps = await unary<{ execution_capabilities: { exec_enabled: boolean } }>(
    dev,
    services.Capabilities.GetCapabilities,
    {},
  );
  assert.equal(caps.execution_capabilities.exec_enabled, true);

  // A real compile: runs once, then the same action is a cached result.
  const source = Buffer.from('int answer(void) { return 42; }\n');
  const action = await putAction(dev, ['gcc', '-O2', '-c', 'a.c', '-o', 'out.o'], { 'a.c': source });
  const ops = await executeOps(dev, action);
  const last = ops.at(-1) as Operation;
  assert.equal(last.done, true);
  const response = msg.ExecuteResponse.decode((last.response as { value: Buffer }).value);
  assert.equal(response.result?.exit_code, 0, JSON.stringify(response));
  assert.equal(response.cached_result, false);
  const out = response.result?.output_files[0];
  assert.equal(out?.path, 'out.o');
  const read = await unary<{ responses: { data: Buffer; status?: { code: number } }[] }>(
    dev,
    services.ContentAddressableStorage.BatchReadBlobs,
    { digests: [out?.digest] },
  );
  assert.equal(read.responses[0]?.data.subarray(0, 4).toString('latin1'), '\x7fELF');
  const again = await execute(dev, action);
  assert.equal(again.cached_result, true);

  // Asked inline, the object comes in the answer; the result is cached a moment later, without it.
  const inlined = await putAction(dev, ['gcc', '-c', 'a.c', '-o', 'out.o'], { 'a.c': Buffer.from('int inl;\n') });
  const inlineResult = (await execute(dev, inlined, { inline: ['out.o'] })).result;
  const contents = Buffer.from(inlineResult?.output_files[0]?.contents ?? []);
  assert.equal(contents.subarray(0, 4).toString('latin1'), '\x7fELF');
  assert.equal(createHash('sha256').update(contents).digest('hex'), inlineResult?.output_files[0]?.digest?.hash);
  let cached: ActionResult | undefined;
  for (let i = 0; i < 100 && !cached; i++) {
    cached = await unary<ActionResult>(dev, services.ActionCache.GetActionResult, { action_digest: inlined }).catch(
      () => undefined,
    );
    if (!cached) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(cached?.output_files[0]?.digest?.hash, inlineResult?.output_files[0]?.digest?.hash);
  assert.equal(Buffer.from(cached?.output_files[0]?.contents ?? []).length, 0, 'the cache keeps digests, not bytes');

  // WaitExecution on the operation Execute named answers with the same finished operation.
  const waited = await new Promise<Operation[]>((resolve, reject) => {
    const spec = services.Execution.WaitExecution;
    const got: Operation[] = [];
    const stream = dev.makeServerStreamRequest(
      spec.path,
      spec.requestSerialize,
      spec.responseDeserialize,
      { name: ops[0]?.name },
      new grpc.Metadata(),
      { deadline: Date.now() + 20_000 },
    );
    stream.on('data', (op: Operation) => got.push(op));
    stream.on('error', reject);
    stream.on('end', () => resolve(got));
  });
  assert.equal(waited.at(-1)?.done, true);
  assert.equal(waited.at(-1)?.name, last.name);

  // GetTree walks an input root; ByteStream reads a range of a blob.
  const rootDir = msg.Directory.encode({
    files: [],
    directories: [
      { name: 'sub', digest: digestOf(msg.Directory.encode({ files: [], directories: [], symlinks: [] })) },
    ],
    symlinks: [],
  });
  const emptyDir = msg.Directory.encode({ files: [], directories: [], symlinks: [] });
  await unary(dev, services.ContentAddressableStorage.BatchUpdateBlobs, {
    requests: [
      { digest: digestOf(rootDir), data: rootDir },
      { digest: digestOf(emptyDir), data: emptyDir },
    ],
  });
  const trees = await new Promise<{ directories: unknown[] }[]>((resolve, reject) => {
    const spec = services.ContentAddressableStorage.GetTree;
    const pages: { directories: unknown[] }[] = [];
    const stream = dev.makeServerStreamRequest(
      spec.path,
      spec.requestSerialize,
      spec.responseDeserialize,
      { root_digest: digestOf(rootDir) },
      new grpc.Metadata(),
      { deadline: Date.now() + 20_000 },
    );
    stream.on('data', (page: { directories: unknown[] }) => pages.push(page));
    stream.on('error', reject);
    stream.on('end', () => resolve(pages));
  });
  assert.equal(trees.flatMap((p) => p.directories).length, 2);
  const object = read.responses[0]?.data as Buffer;
  const range = await new Promise<Buffer>((resolve, reject) => {
    const spec = services.ByteStream.Read;
    const chunks: Buffer[] = [];
    const stream = dev.makeServerStreamRequest(
      spec.path,
      spec.requestSerialize,
      spec.responseDeserialize,
      { resource_name: `blobs/${out?.digest?.hash}/${out?.digest?.size_bytes}`, read_offset: 1, read_limit: 3 },
      new grpc.Metadata(),
      { deadline: Date.now() + 20_000 },
    );
    stream.on('data', (r: { data: Buffer }) => chunks.push(Buffer.from(r.data)));
    stream.on('error', reject);
    stream.on('end', () => resolve(Buffer.concat(chunks)));
  });
  assert.deepEqual(range, object.subarray(1, 4));

  // A blob whose bytes do not hash to its name: refused, and not stored under either name.
  const liar = Buffer.from('not what the digest says');
  const claimed = digestOf(Buffer.from('something else entirely!'));
  const batch = await unary<{ responses: { status?: { code: number } }[] }>(
    dev,
    services.ContentAddressableStorage.BatchUpdateBlobs,
    {
      requests: [{ digest: claimed, data: liar }],
    },
  );
  assert.equal(batch.responses[0]?.status?.code, grpc.status.INVALID_ARGUMENT);
  await assert.rejects(
    writeChunks(dev, `uploads/x/blobs/${claimed.hash}/${claimed.size_bytes}`, liar, 1),
    (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
  );
  await assert.rejects(
    writeChunks(dev, 'uploads/x/blobs/../../etc/passwd/12', liar, 1),
    (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
  );
  const missing = await unary<{ missing_blob_digests: Digest[] }>(
    dev,
    services.ContentAddressableStorage.FindMissingBlobs,
    {
      blob_digests: [claimed, digestOf(liar)],
    },
  );
  assert.equal(missing.missing_blob_digests.length, 2, 'neither name holds the lying bytes');

  // A large blob in several chunks is stored whole; one whose client stops before finish_write is not stored.
  const big = Buffer.alloc(300_000, 'abcdefgh');
  const bigDigest = digestOf(big);
  const committed = (await writeChunks(dev, `uploads/u1/blobs/${bigDigest.hash}/${big.length}`, big, 5)) as {
    committed_size: number;
  };
  assert.equal(committed.committed_size, big.length);
  const cut = Buffer.alloc(200_000, 'zyxw');
  const cutDigest = digestOf(cut);
  await assert.rejects(
    writeChunks(dev, `uploads/u2/blobs/${cutDigest.hash}/${cut.length}`, cut, 4, false),
    (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
  );
  const after = await unary<{ missing_blob_digests: Digest[] }>(
    dev,
    services.ContentAddressableStorage.FindMissingBlobs,
    {
      blob_digests: [bigDigest, cutDigest],
    },
  );
  assert.deepEqual(
    after.missing_blob_digests.map((d) => d.hash),
    [cutDigest.hash],
  );

  // Commands that are not a compiler call, or read outside the input root: refused before any worker.
  for (const [args, code] of [
    [['/bin/sh', '-c', 'id > out.o'], /ACCEL_REAPI_COMMAND_REFUSED/],
    [['bash', '-c', 'gcc -c a.c -o out.o && curl x'], /ACCEL_REAPI_COMMAND_REFUSED/],
    [['bash', '-c', 'gcc -c a.c -o out.o $(id)'], /ACCEL_REAPI_COMMAND_REFUSED/],
    [['python3', '-c', 'print(1)'], /ACCEL_FARM_COMPILER_REFUSED/],
    [['gcc', '-c', 'a.c', '-o', 'out.o', '-include', '/etc/shadow'], /ACCEL_FARM_OUTSIDE_TREE/],
    [['gcc', '-c', 'a.c', '-o', 'out.o', '-fplugin=./evil.so'], /ACCEL_FARM_ARG_REFUSED/],
  ] as const) {
    const evil = await putAction(dev, [...args], { 'a.c': source });
    await assert.rejects(executeOps(dev, evil), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.PERMISSION_DENIED, `${args.join(' ')}: ${e.details}`);
      assert.match(e.details, code);
      return true;
    });
  }
  // An input named to climb out of the job directory.
  const climb = await putAction(dev, ['gcc', '-c', 'a.c', '-o', 'out.o'], { 'a.c': source }, ['../a.c']);
  await assert.rejects(executeOps(dev, climb), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
  // An action whose blobs are not uploaded: FAILED_PRECONDITION (the client uploads and asks again).
  await assert.rejects(
    executeOps(dev, digestOf(Buffer.from('never uploaded'))),
    (e: grpc.ServiceError) => e.code === grpc.status.FAILED_PRECONDITION,
  );

  // Certificates: a worker's is not a client's; none at all does not get through the handshake.
  const worker = reapiClient(t, port, homes.w1, homes.dev as string);
  await assert.rejects(
    unary(worker, services.ContentAddressableStorage.FindMissingBlobs, { blob_digests: [] }),
    (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED,
  );
  const nobody = reapiClient(t, port, undefined, homes.dev as string);
  await assert.rejects(
    unary(nobody, services.Capabilities.GetCapabilities, {}),
    (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE,
  );
});

test('REAPI and the mirror’s /cache share one action cache: a result put through either is a hit through the other', async (t) => {
  const dir = tempDir(t);
  const homes = await farmCerts(dir, { syncer: 'syncer', dev: 'client' });
  const home = homes.syncer as string;
  const syncer = await startSyncer(t, home, []);
  const port = await reapiPort(syncer);
  const mirror = await serveCli(t, home);
  const dev = reapiClient(t, port, homes.dev);
  const auth = { authorization: `Bearer ${cacheToken(home)}` };

  // Bazel's HTTP cache layout: the output in /cache/cas, the ActionResult in /cache/ac.
  const output = Buffer.from('an object file');
  const outDigest = digestOf(output);
  const viaHttp: ActionResult = {
    output_files: [{ path: 'x.o', digest: outDigest, is_executable: false }],
    exit_code: 0,
  };
  const httpKey = digestOf(Buffer.from('action one')).hash;
  for (const [path, body] of [
    [`cas/${outDigest.hash}`, output],
    [`ac/${httpKey}`, msg.ActionResult.encode(viaHttp)],
  ] as const) {
    const res = await fetch(`${mirror.base}/cache/${path}`, { method: 'PUT', headers: auth, body });
    assert.equal(res.status, 200, path);
  }
  const got = await unary<ActionResult>(dev, services.ActionCache.GetActionResult, {
    action_digest: { hash: httpKey, size_bytes: 10 },
  });
  assert.equal(got.output_files[0]?.digest?.hash, outDigest.hash);

  // And the other way: UpdateActionResult over gRPC, read back over HTTP.
  const grpcKey = digestOf(Buffer.from('action two')).hash;
  await unary(dev, services.ActionCache.UpdateActionResult, {
    action_digest: { hash: grpcKey, size_bytes: 10 },
    action_result: { ...viaHttp, exit_code: 0, stdout_raw: Buffer.from('hi') },
  });
  const res = await fetch(`${mirror.base}/cache/ac/${grpcKey}`, { headers: auth });
  assert.equal(res.status, 200);
  const decoded = msg.ActionResult.decode(Buffer.from(await res.arrayBuffer()));
  assert.equal(decoded.output_files[0]?.path, 'x.o');
  assert.equal(Buffer.from(decoded.stdout_raw ?? []).toString(), 'hi');

  // No worker at all: Execute fails at once with UNAVAILABLE (a client builds elsewhere), it does not queue.
  const lonely = await putAction(dev, ['gcc', '-c', 'a.c', '-o', 'out.o'], { 'a.c': Buffer.from('int x;\n') });
  await assert.rejects(executeOps(dev, lonely), (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.UNAVAILABLE, e.details);
    assert.match(e.details, /no worker with gcc/);
    return true;
  });

  // A result whose output blob is gone is a miss, not a result pointing at nothing.
  const orphanKey = digestOf(Buffer.from('action three')).hash;
  await unary(dev, services.ActionCache.UpdateActionResult, {
    action_digest: { hash: orphanKey, size_bytes: 12 },
    action_result: { output_files: [{ path: 'y.o', digest: digestOf(Buffer.from('never stored')) }], exit_code: 0 },
  });
  await assert.rejects(
    unary(dev, services.ActionCache.GetActionResult, { action_digest: { hash: orphanKey, size_bytes: 12 } }),
    (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND,
  );
});
