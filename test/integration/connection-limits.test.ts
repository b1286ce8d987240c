import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { MtlsClient } from '../../src/net/client.ts';
import { createMtlsServer, sendJson } from '../../src/net/server.ts';
import { loadIdentity } from '../../src/net/tls-identity.ts';
import { tempDir, until } from '../helpers.ts';
import { startTestMirror } from '../mirror-harness.ts';
import { farmCerts } from './farm-harness.ts';

const LIMITS = { max: 40, headersTimeoutMs: 1000, keepAliveMs: 1000 };

/** Opens `n` TCP connections that never send a byte (what exhausted the mirror), counting the ones closed. */
async function idleConnections(t: Parameters<typeof tempDir>[0], port: number, n: number) {
  const sockets: Socket[] = [];
  let closed = 0;
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  for (let i = 0; i < n; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.on('close', () => {
      closed++;
    });
    sockets.push(s);
    await new Promise<void>((r) => s.once('connect', () => r()).once('close', () => r()));
  }
  return { closed: () => closed };
}

test('the mirror: idle connections beyond the cap cannot silence it, and idle ones time out', async (t) => {
  const m = await startTestMirror(t, { connections: LIMITS });
  const idle = await idleConnections(t, m.port, 150);
  const res = await fetch(`${m.base}/_accel/status.json`, { headers: { connection: 'close' } });
  assert.equal(res.status, 200, 'an ordinary request is still answered');
  await res.arrayBuffer();
  await until('every idle connection closed by the server', () => idle.closed() === 150, 30_000);
});

test('the syncer’s TLS server: half-open connections are capped and timed out, a peer still gets in', async (t) => {
  const dir = tempDir(t);
  const homes = await farmCerts(dir, { syncer: 'syncer', dev: 'client' });
  const server = createMtlsServer({
    identity: loadIdentity(homes.syncer as string),
    host: '127.0.0.1',
    port: 0,
    handler: (_req, res) => sendJson(res, 200, { ok: true }),
    connections: LIMITS,
  });
  const { port } = await server.listen();
  t.after(() => server.close());
  const idle = await idleConnections(t, port, 150);
  const client = new MtlsClient(`https://127.0.0.1:${port}`, loadIdentity(homes.dev as string));
  t.after(() => client.close());
  assert.equal((await client.request('GET', '/status', undefined, { timeoutMs: 20_000 })).status, 200);
  await until('every half-open connection closed by the server', () => idle.closed() === 150, 30_000);
});
