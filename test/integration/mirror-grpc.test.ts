// The mirror's gRPC port with a real grpc-js client: the Remote Asset API's FetchBlob as an ordinary mirror
// fetch (shared with GET /http/…, pins, headers, allowlist, remembered 404s, offline, timeouts), the REAPI CAS,
// ByteStream and action cache with the mirror's tokens, and hostile requests.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { type TestContext, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { MirrorOptions } from '../../src/mirror/server.ts';
import { unaryCall } from '../../src/reapi/call.ts';
import { type ActionResult, type Digest, type MethodSpec, msg, services } from '../../src/reapi/proto.ts';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream.ts';
import { tempDir } from '../helpers.ts';
import { startTestMirror, TEST_CACHE_TOKEN } from '../mirror-harness.ts';

const FETCH = services.Fetch.FetchBlob;

function digestOf(data: Buffer): Digest {
  return { hash: createHash('sha256').update(data).digest('hex'), size_bytes: data.length };
}

function sri(data: Buffer): string {
  return `sha256-${createHash('sha256').update(data).digest('base64')}`;
}

async function upstream(t: TestContext): Promise<FakeUpstream> {
  const up = await startFakeUpstream();
  t.after(() => up.close());
  return up;
}

async function mirror(
  t: TestContext,
  up: FakeUpstream | undefined,
  options: Partial<MirrorOptions> & { home?: string } = {},
) {
  const m = await startTestMirror(t, { grpcPort: 0, stallSeconds: 5, allow: up ? [up.origin] : [], ...options });
  const port = m.server.grpcPort();
  assert.ok(port);
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.after(() => client.close());
  return { ...m, client };
}

function call<Res>(c: grpc.Client, spec: MethodSpec, req: unknown, token?: string): Promise<Res> {
  const metadata = new grpc.Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return unaryCall<Res>(c, spec, req, { metadata, timeoutMs: 20_000 });
}

async function rejects(p: Promise<unknown>, code: grpc.status, text: RegExp): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, code, `${grpc.status[err.code]}: ${err.details}`);
    assert.match(err.details, text);
    return true;
  });
}

interface FetchAnswer {
  uri: string;
  blob_digest?: Digest;
}

function fetchBlob(c: grpc.Client, uris: string[], qualifiers: { name: string; value: string }[] = [], extra = {}) {
  return call<FetchAnswer>(c, FETCH, { uris, qualifiers, ...extra });
}

async function readBlob(c: grpc.Client, d: Digest): Promise<Buffer> {
  const res = await call<{ responses: { data: Buffer; status: { code: number } }[] }>(
    c,
    services.ContentAddressableStorage.BatchReadBlobs,
    { digests: [d] },
  );
  assert.equal(res.responses[0]?.status.code, 0);
  return Buffer.from(res.responses[0]?.data ?? []);
}

test('FetchBlob is a mirror fetch: one upstream request, the blob in the CAS, and a hit for GET /http/… and the other way round', async (t) => {
  const up = await upstream(t);
  const a = randomBytes(200_000);
  const b = randomBytes(5000);
  up.files.set('/a.tar.gz', { body: a });
  up.files.set('/b.tar.gz', { body: b });
  const m = await mirror(t, up);
  const url = `http://${up.origin}/a.tar.gz`;
  const got = await fetchBlob(m.client, [url], [{ name: 'checksum.sri', value: sri(a) }]);
  assert.deepEqual(got.blob_digest, digestOf(a));
  assert.equal(got.uri, url);
  assert.deepEqual(await readBlob(m.client, digestOf(a)), a);
  const again = await fetchBlob(m.client, [url]);
  assert.deepEqual(again.blob_digest, digestOf(a));
  const viaHttp = await fetch(`${m.base}/http/${up.origin}/a.tar.gz`);
  assert.equal(viaHttp.headers.get('x-accel-cache'), 'HIT');
  assert.deepEqual(Buffer.from(await viaHttp.arrayBuffer()), a);
  assert.equal(up.count('/a.tar.gz'), 1);
  // The other way round: fetched over HTTP, then a FetchBlob hit.
  assert.equal((await fetch(`${m.base}/http/${up.origin}/b.tar.gz`)).status, 200);
  assert.deepEqual((await fetchBlob(m.client, [`http://${up.origin}/b.tar.gz`])).blob_digest, digestOf(b));
  assert.equal(up.count('/b.tar.gz'), 1);
});

test('FetchBlob: uris in order, 404s remembered, a checksum mismatch names the URL and stores nothing under it', async (t) => {
  const up = await upstream(t);
  const body = Buffer.from('the real archive\n');
  up.files.set('/good.tgz', { body });
  up.files.set('/evil.tgz', { body: Buffer.from('something else\n') });
  const m = await mirror(t, up);
  const gone = `http://${up.origin}/gone.tgz`;
  const good = `http://${up.origin}/good.tgz`;
  const got = await fetchBlob(m.client, [gone, good]);
  assert.equal(got.uri, good);
  await rejects(fetchBlob(m.client, [gone]), grpc.status.NOT_FOUND, /ACCEL_MIRROR_UPSTREAM_NOT_FOUND.*remembered/);
  assert.equal(up.count('/gone.tgz'), 1);
  const evil = `http://${up.origin}/evil.tgz`;
  await rejects(
    fetchBlob(m.client, [evil], [{ name: 'checksum.sri', value: sri(Buffer.from('what the workspace pinned\n')) }]),
    grpc.status.FAILED_PRECONDITION,
    new RegExp(`ACCEL_STORE_DIGEST_MISMATCH: ${evil.replaceAll('.', '\\.')}`),
  );
  assert.equal(m.store.refs.get('url', evil), undefined);
});

test('FetchBlob: http_header qualifiers reach the origin they are for only; hostile requests are INVALID_ARGUMENT or PERMISSION_DENIED', async (t) => {
  const up = await upstream(t);
  const other = await upstream(t);
  up.files.set('/private.tgz', { body: Buffer.from('secret\n') });
  other.files.set('/public.tgz', { body: Buffer.from('public\n') });
  const m = await mirror(t, up, { allow: [up.origin, other.origin] });
  await fetchBlob(
    m.client,
    [`http://${up.origin}/private.tgz`],
    [
      { name: 'http_header:Authorization', value: 'Bearer upstream-secret' },
      { name: 'bazel.canonical_id', value: 'x' },
    ],
  );
  assert.equal(up.requests.at(-1)?.headers.authorization, 'Bearer upstream-secret');
  await fetchBlob(
    m.client,
    [`http://${up.origin}/missing.tgz`, `http://${other.origin}/public.tgz`],
    [{ name: 'http_header_url:0:X-Token', value: 'only-for-the-first' }],
  );
  assert.equal(up.requests.at(-1)?.headers['x-token'], 'only-for-the-first');
  assert.equal(other.requests.at(-1)?.headers['x-token'], undefined);

  const url = `http://${up.origin}/private.tgz`;
  const bad = grpc.status.INVALID_ARGUMENT;
  await rejects(fetchBlob(m.client, [url], [{ name: 'resource_type', value: 'x' }]), bad, /BAD_QUALIFIER.*unknown/);
  await rejects(fetchBlob(m.client, [url], [{ name: 'checksum.sri', value: 'md5-abc' }]), bad, /sha256 only/);
  await rejects(fetchBlob(m.client, [url], [{ name: 'http_header:Host', value: 'x' }]), bad, /may not be sent/);
  await rejects(fetchBlob(m.client, [url], [{ name: 'http_header:X', value: 'a\r\nb' }]), bad, /line breaks/);
  await rejects(fetchBlob(m.client, ['ftp://example.invalid/x']), bad, /ACCEL_FETCH_BAD_URL/);
  await rejects(fetchBlob(m.client, []), bad, /no uris/);
  await rejects(fetchBlob(m.client, [`http://${up.origin}/a%2f..%2fb`]), bad, /ACCEL_MIRROR_BAD_PATH.*encoded slash/);
  await rejects(fetchBlob(m.client, [url], [], { digest_function: 2 }), bad, /SHA-256 only/);
  // Loopback without mirror.allow: the address guard refuses, with the mirror's reason.
  const strict = await mirror(t, up, { allow: [] });
  await rejects(fetchBlob(strict.client, [url]), grpc.status.PERMISSION_DENIED, /ACCEL_FETCH_REFUSED.*allow/);
  await rejects(
    call(m.client, services.Fetch.FetchDirectory, { uris: [url] }),
    grpc.status.UNIMPLEMENTED,
    /not directories/,
  );
  await rejects(
    call(m.client, services.Push.PushBlob, { uris: [url] }, TEST_CACHE_TOKEN),
    grpc.status.UNIMPLEMENTED,
    /pushed/,
  );
});

test('FetchBlob offline serves the store and refuses the rest; a timeout answers DEADLINE_EXCEEDED; oldest_content_accepted refetches', async (t) => {
  const up = await upstream(t);
  const body = Buffer.from('v1\n');
  up.files.set('/x.tgz', { body });
  up.files.set('/slow.tgz', { body: randomBytes(1000), stallAt: 10 });
  const home = tempDir(t);
  const online = await mirror(t, up, { home });
  const url = `http://${up.origin}/x.tgz`;
  await fetchBlob(online.client, [url]);
  await rejects(
    fetchBlob(online.client, [`http://${up.origin}/slow.tgz`], [], { timeout: { seconds: 0, nanos: 300e6 } }),
    grpc.status.DEADLINE_EXCEEDED,
    /ACCEL_MIRROR_TIMEOUT/,
  );
  await fetchBlob(online.client, [url], [], {
    oldest_content_accepted: { seconds: Math.ceil(Date.now() / 1000) + 1, nanos: 0 },
  });
  assert.equal(up.count('/x.tgz'), 2);
  await online.close();
  await up.close();
  const offline = await mirror(t, undefined, { home, offline: true });
  assert.deepEqual((await fetchBlob(offline.client, [url])).blob_digest, digestOf(body));
  await rejects(
    fetchBlob(offline.client, [`http://${up.origin}/never.tgz`]),
    grpc.status.UNAVAILABLE,
    /ACCEL_MIRROR_OFFLINE/,
  );
});

test('CAS, ByteStream and action cache on the mirror: writes need the cache token, a result naming a missing blob is a miss over gRPC and /cache/ac alike', async (t) => {
  const m = await mirror(t, undefined);
  const blob = Buffer.from('an object file\n');
  const d = digestOf(blob);
  const update = (token?: string, data = blob, digest = d) =>
    call<{ responses: { status: { code: number; message: string } }[] }>(
      m.client,
      services.ContentAddressableStorage.BatchUpdateBlobs,
      { requests: [{ digest, data }] },
      token,
    );
  await rejects(update(), grpc.status.UNAUTHENTICATED, /cache needs its token/);
  await rejects(update('wrong'), grpc.status.PERMISSION_DENIED, /cache needs its token/);
  const wrong = await update(TEST_CACHE_TOKEN, Buffer.from('other bytes, same len'), { ...d, size_bytes: 21 });
  assert.equal(wrong.responses[0]?.status.code, grpc.status.INVALID_ARGUMENT);
  const missing = await call<{ missing_blob_digests: Digest[] }>(
    m.client,
    services.ContentAddressableStorage.FindMissingBlobs,
    { blob_digests: [d] },
  );
  assert.deepEqual(missing.missing_blob_digests, [d]);

  const action = digestOf(Buffer.from('action'));
  const result: ActionResult = { output_files: [{ path: 'out.o', digest: d }], exit_code: 0 };
  const updateResult = (token?: string) =>
    call(m.client, services.ActionCache.UpdateActionResult, { action_digest: action, action_result: result }, token);
  await rejects(updateResult(), grpc.status.UNAUTHENTICATED, /token/);
  await updateResult(TEST_CACHE_TOKEN);
  const get = () => call<ActionResult>(m.client, services.ActionCache.GetActionResult, { action_digest: action });
  await rejects(get(), grpc.status.NOT_FOUND, /no result/);
  assert.equal((await fetch(`${m.base}/cache/ac/${action.hash}`)).status, 404);
  assert.equal((await update(TEST_CACHE_TOKEN)).responses[0]?.status.code, 0);
  assert.equal((await get()).output_files[0]?.path, 'out.o');
  const viaHttp = await fetch(`${m.base}/cache/ac/${action.hash}`);
  assert.equal(viaHttp.status, 200);
  assert.equal(msg.ActionResult.decode(Buffer.from(await viaHttp.arrayBuffer())).output_files[0]?.path, 'out.o');

  // ByteStream: a streamed upload checked against its digest, then read back.
  const big = randomBytes(300_000);
  const write = (token: string | undefined, data: Buffer, digest: Digest) =>
    new Promise<unknown>((resolve, reject) => {
      const md = new grpc.Metadata();
      if (token) md.set('authorization', `Bearer ${token}`);
      const spec = services.ByteStream.Write;
      const s = m.client.makeClientStreamRequest(
        spec.path,
        spec.requestSerialize,
        spec.responseDeserialize,
        md,
        {},
        (err, res) => (err ? reject(err) : resolve(res)),
      );
      const name = `uploads/u1/blobs/${digest.hash}/${digest.size_bytes}`;
      for (let i = 0; i < data.length; i += 100_000) {
        s.write({
          resource_name: name,
          write_offset: i,
          data: data.subarray(i, i + 100_000),
          finish_write: i + 100_000 >= data.length,
        });
      }
      s.end();
    });
  await rejects(write(undefined, big, digestOf(big)), grpc.status.UNAUTHENTICATED, /token/);
  await rejects(
    write(TEST_CACHE_TOKEN, big, { ...digestOf(big), size_bytes: 1000 }),
    grpc.status.INVALID_ARGUMENT,
    /more than/,
  );
  await rejects(
    write(TEST_CACHE_TOKEN, big, { hash: digestOf(randomBytes(8)).hash, size_bytes: big.length }),
    grpc.status.INVALID_ARGUMENT,
    /do not hash/,
  );
  await write(TEST_CACHE_TOKEN, big, digestOf(big));
  assert.deepEqual(await readBlob(m.client, digestOf(big)), big);
  const caps = await call<{ execution_capabilities: { exec_enabled: boolean } }>(
    m.client,
    services.Capabilities.GetCapabilities,
    {},
  );
  assert.equal(caps.execution_capabilities.exec_enabled, false);
});

test('with mirror.token every gRPC call needs it, as every HTTP request does', async (t) => {
  const up = await upstream(t);
  up.files.set('/x.tgz', { body: Buffer.from('x') });
  const m = await mirror(t, up, { token: 'mirror-secret' });
  const url = `http://${up.origin}/x.tgz`;
  await rejects(fetchBlob(m.client, [url]), grpc.status.UNAUTHENTICATED, /ACCEL_MIRROR_TOKEN/);
  await rejects(call(m.client, FETCH, { uris: [url] }, 'nope'), grpc.status.PERMISSION_DENIED, /wrong bearer/);
  const got = await call<FetchAnswer>(m.client, FETCH, { uris: [url] }, 'mirror-secret');
  assert.equal(got.blob_digest?.size_bytes, 1);
});
