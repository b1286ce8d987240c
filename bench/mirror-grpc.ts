// FetchBlob on the mirror's gRPC port against a GET of the same file through its HTTP port: cold (fetched
// from a local upstream) and warm (a FetchBlob answered from the store, then the blob read from the CAS, as
// Bazel's remote downloader does), per request, one client at a time.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { silentLog } from '../src/core/log.ts';
import { createMirrorServer } from '../src/mirror/server.ts';
import { type Digest, type MethodSpec, services } from '../src/reapi/proto.ts';
import { Store } from '../src/store/store.ts';
import { startFakeUpstream } from '../test/fake-upstream.ts';
import { median } from './servers.ts';
import { fmt } from './util.ts';

const SIZE = 1024 * 1024;
const COLD = 20;
const WARM = 200;

function unary<Res>(c: grpc.Client, spec: MethodSpec, req: unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    c.makeUnaryRequest(
      spec.path,
      spec.requestSerialize,
      spec.responseDeserialize as (b: Buffer) => Res,
      req,
      (err, res) => (err ? reject(err) : resolve(res as Res)),
    );
  });
}

export async function benchMirrorGrpc(print: (line: string) => void): Promise<void> {
  print('## Mirror over gRPC: FetchBlob (`bench/mirror-grpc.ts`, `npm run bench -- mirror-grpc`)\n');
  const home = mkdtempSync(join(tmpdir(), 'accel-bench-grpc-'));
  const up = await startFakeUpstream();
  const store = Store.open({ home });
  const mirror = createMirrorServer({
    store,
    log: silentLog,
    port: 0,
    bind: '127.0.0.1',
    grpcPort: 0,
    offline: false,
    token: '',
    cacheToken: 'bench',
    ttlSeconds: 3600,
    stallSeconds: 10,
    remaps: {},
    immutable: [],
    allow: [up.origin],
  });
  try {
    const { port } = await mirror.listen();
    const client = new grpc.Client(`127.0.0.1:${mirror.grpcPort()}`, grpc.credentials.createInsecure());
    for (let i = 0; i < 2 * COLD + 1; i++) up.files.set(`/f${i}.bin`, { body: randomBytes(SIZE) });
    const viaHttp = async (i: number) => {
      const res = await fetch(`http://127.0.0.1:${port}/http/${up.origin}/f${i}.bin`);
      if ((await res.arrayBuffer()).byteLength !== SIZE) throw new Error('short body');
    };
    const viaGrpc = async (i: number) => {
      const got = await unary<{ blob_digest: Digest }>(client, services.Fetch.FetchBlob, {
        uris: [`http://${up.origin}/f${i}.bin`],
      });
      const read = await unary<{ responses: { data: Buffer }[] }>(
        client,
        services.ContentAddressableStorage.BatchReadBlobs,
        { digests: [got.blob_digest] },
      );
      const data = read.responses[0]?.data ?? Buffer.alloc(0);
      if (createHash('sha256').update(data).digest('hex') !== got.blob_digest.hash) throw new Error('wrong blob');
    };
    const time = async (n: number, fn: (i: number) => Promise<void>, index: (i: number) => number) => {
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await fn(index(i));
        ms.push(performance.now() - t0);
      }
      return median(ms);
    };
    const coldHttp = await time(COLD, viaHttp, (i) => i);
    const coldGrpc = await time(COLD, viaGrpc, (i) => COLD + i);
    await viaHttp(2 * COLD);
    const warmHttp = await time(WARM, viaHttp, () => 2 * COLD);
    const warmGrpc = await time(WARM, viaGrpc, () => 2 * COLD);
    client.close();
    print('| 1 MiB file, one client, median ms per request | HTTP GET | FetchBlob + BatchReadBlobs | ratio |');
    print('| --- | --- | --- | --- |');
    print(
      `| cold (fetched from a loopback upstream) | ${fmt(coldHttp, 2)} | ${fmt(coldGrpc, 2)} | ${fmt(coldGrpc / coldHttp, 2)}× |`,
    );
    print(`| warm (from the store) | ${fmt(warmHttp, 2)} | ${fmt(warmGrpc, 2)} | ${fmt(warmGrpc / warmHttp, 2)}× |`);
    print(`\nGoal: warm within 1.5× of the HTTP hit: ${warmGrpc / warmHttp <= 1.5 ? 'met' : 'not met'}.\n`);
  } finally {
    await mirror.close();
    store.close();
    await up.close();
    rmSync(home, { recursive: true, force: true });
  }
}
