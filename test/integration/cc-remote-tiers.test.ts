// `cc.remote` with several servers: tiers read in order (a hit at a lower tier written back to the ones before
// it) and shard sets (rendezvous hashing on the key; a shard down makes its keys miss, nothing else), against a
// minimal Bazel HTTP cache written here, accel's own mirror, and nginx's WebDAV PUT.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { rendezvousOwner } from '../../src/cc/rendezvous.ts';
import { MAIN, ok, okStderr, runAccel, runCommand, startNginx, tempDir, testNeeding } from '../helpers.ts';
import { startTestMirror, TEST_CACHE_TOKEN } from '../mirror-harness.ts';

const test = testNeeding('gcc');
const testNginx = testNeeding('gcc', 'nginx');

/** Daemons started here exit on their own soon after, even if the test dies before stopping them. */
const DAEMON_ENV = { ACCEL_CC_DAEMON_IDLE_TIMEOUT: '60' };

/**
 * The least a server must do to be a Bazel HTTP cache: GET, HEAD and PUT of `/cache/ac/<hex>` and
 * `/cache/cas/<hex>`, kept in a Map. Remembers the authorization header of every PUT.
 */
interface MinimalCache {
  url: string;
  entries: Map<string, Buffer>;
  /** Keys (the hex after ac/) it holds a manifest for. */
  keys(): string[];
  tokens: Set<string>;
  stop(): Promise<void>;
}

async function startMinimalCache(t: TestContext): Promise<MinimalCache> {
  const entries = new Map<string, Buffer>();
  const tokens = new Set<string>();
  const server: Server = createServer((req, res) => {
    const path = /^\/cache\/((?:ac|cas)\/[0-9a-f]{64})$/.exec(req.url ?? '')?.[1];
    if (!path) return res.writeHead(404).end();
    if (req.method === 'PUT') {
      tokens.add(req.headers.authorization ?? '');
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        entries.set(path, Buffer.concat(chunks));
        res.writeHead(200).end();
      });
      return;
    }
    const body = entries.get(path);
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  t.after(stop);
  const keys = () => [...entries.keys()].filter((k) => k.startsWith('ac/')).map((k) => k.slice(3));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/cache`, entries, keys, tokens, stop };
}

type Mode = 'accel cc --' | 'native client';

/** Compiles `source` to `out` in `dir` with gcc through the cache of `home`, with `env` (cc.remote, …). */
async function compileIn(
  t: TestContext,
  mode: Mode,
  home: string,
): Promise<(dir: string, source: string, out: string, env?: NodeJS.ProcessEnv) => Promise<void>> {
  if (mode === 'accel cc --') {
    return async (dir, source, out, env = {}) => {
      okStderr(
        await runCommand(process.execPath, [MAIN, '--home', home, 'cc', '--', 'gcc', '-c', source, '-o', out], {
          cwd: dir,
          env,
        }),
      );
    };
  }
  okStderr(await runAccel(['--home', home, 'cc', '--masquerade-dir']));
  t.after(async () => {
    await runAccel(['--home', home, 'cc', 'daemon', '--stop']);
  });
  return async (dir, source, out, env = {}) => {
    const client = join(home, 'bin', 'accel-cc');
    okStderr(await runCommand(client, ['gcc', '-c', source, '-o', out], { cwd: dir, env: { ...DAEMON_ENV, ...env } }));
  };
}

async function stats(home: string): Promise<Record<string, number>> {
  const r = await runAccel(['--home', home, '--json', 'cc', '--stats']);
  assert.equal(r.code, 0, r.stderr.toString());
  return JSON.parse(r.stdout.toString()).counters;
}

for (const mode of ['accel cc --', 'native client'] as const) {
  test(`${mode}: two tiers: a miss is written to both; with tier 1 emptied, tier 2 hits and is written back to tier 1`, async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'x.c'), 'int x(void) { return 7; }\n');
    const [one, two] = [await startMinimalCache(t), await startMinimalCache(t)];
    const env = { ACCEL_CC_REMOTE: `${one.url} ${two.url}` };
    const homes = ['a', 'b', 'c'].map((h) => join(dir, h));
    const cc = await Promise.all(homes.map((h) => compileIn(t, mode, h)));

    await cc[0]?.(dir, 'x.c', 'a.o', env);
    assert.deepEqual(await stats(homes[0] as string), { miss: 1 });
    assert.equal(one.keys().length, 1);
    assert.deepEqual(one.keys(), two.keys(), 'the same key in both tiers');
    assert.deepEqual([...one.entries.keys()].sort(), [...two.entries.keys()].sort(), 'manifest and blobs in both');

    one.entries.clear();
    await cc[1]?.(dir, 'x.c', 'b.o', env);
    const second = await stats(homes[1] as string);
    assert.equal(second['remote hit'], 1, JSON.stringify(second));
    assert.equal(second['remote hit: tier 2'], 1, JSON.stringify(second));
    assert.equal(second.miss, undefined);
    assert.deepEqual([...one.entries.keys()].sort(), [...two.entries.keys()].sort(), 'written back to tier 1');

    two.entries.clear();
    await cc[2]?.(dir, 'x.c', 'c.o', env);
    assert.equal((await stats(homes[2] as string))['remote hit: tier 1'], 1);
    const bytes = readFileSync(join(dir, 'a.o'));
    assert.ok(bytes.equals(readFileSync(join(dir, 'b.o'))) && bytes.equals(readFileSync(join(dir, 'c.o'))));
    const text = ok(await runAccel(['--home', homes[1] as string, 'cc', '--stats']));
    assert.match(text, /remote: +1\n +tier 2: +1\n/);
  });
}

test('a shard set of three with weights: each key on the shard rendezvous hashing names; one shard down misses only its keys, builds succeed', async (t) => {
  const dir = tempDir(t);
  const sources = Array.from({ length: 12 }, (_, i) => `f${i}.c`);
  for (const [i, s] of sources.entries()) writeFileSync(join(dir, s), `int f${i}(void) { return ${i}; }\n`);
  const shards = [await startMinimalCache(t), await startMinimalCache(t), await startMinimalCache(t)];
  const port = (c: MinimalCache) => new URL(c.url).port;
  const [a, b, c] = shards as [MinimalCache, MinimalCache, MinimalCache];
  // ccache's form, with the port as the shard's name: http://127.0.0.1:*/cache|shards=P1,P2(2),P3
  const env = { ACCEL_CC_REMOTE: `http://127.0.0.1:*/cache|shards=${port(a)},${port(b)}(2),${port(c)}` };
  const weights = new Map([
    [a, 1],
    [b, 2],
    [c, 1],
  ]);
  const one = join(dir, 'one');
  const cc = await compileIn(t, 'accel cc --', one);
  for (const s of sources) await cc(dir, s, `${s}.one.o`, env);
  assert.deepEqual(await stats(one), { miss: sources.length });

  const all = shards.flatMap((s) => s.keys());
  assert.equal(all.length, sources.length, 'every key on exactly one shard');
  const ids = shards.map((s) => ({ id: s.url, weight: weights.get(s) as number, s }));
  for (const s of shards) {
    for (const key of s.keys()) assert.equal(rendezvousOwner(key, ids).s, s, 'the owner rendezvous hashing names');
    // Everything of a key lives with it: the manifest's result is on the same shard.
    for (const key of s.keys()) {
      const manifest = JSON.parse((s.entries.get(`ac/${key}`) as Buffer).toString()) as {
        entries: { result: string }[];
      };
      assert.ok(s.entries.has(`cas/${manifest.entries[0]?.result}`));
    }
  }
  const down = shards.find((s) => s.keys().length > 0 && s.keys().length < sources.length);
  assert.ok(down, 'keys spread over more than one shard');
  const lost = down.keys().length;
  await down.stop();

  const two = join(dir, 'two');
  const cc2 = await compileIn(t, 'accel cc --', two);
  const started = Date.now();
  for (const s of sources) await cc2(dir, s, `${s}.two.o`, env);
  const counters = await stats(two);
  assert.equal(counters.miss, lost, `only the stopped shard's keys miss: ${JSON.stringify(counters)}`);
  assert.equal(counters['remote hit'], sources.length - lost);
  for (const s of sources)
    assert.ok(readFileSync(join(dir, `${s}.one.o`)).equals(readFileSync(join(dir, `${s}.two.o`))));
  const remembered = JSON.parse(readFileSync(join(two, 'run', 'cache-down.json'), 'utf8')) as Record<string, number>;
  assert.deepEqual(Object.keys(remembered), [down.url], 'the stopped shard is remembered as down');
  assert.ok(Date.now() - started < 60_000);
});

test('accel mirror serve as a tier after a minimal cache, each tier with its own token', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'y.c'), 'int y(void) { return 9; }\n');
  const edge = await startMinimalCache(t);
  const mirror = await startTestMirror(t);
  const config = { cc: { remote: [edge.url, { url: `${mirror.base}/cache`, token: TEST_CACHE_TOKEN }] } };
  const homes = ['one', 'two'].map((h) => join(dir, h));
  for (const home of homes) {
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'config.json'), JSON.stringify(config));
  }
  const env = { ACCEL_CC_REMOTE_TOKEN: 'edge-token' };
  await (await compileIn(t, 'accel cc --', homes[0] as string))(dir, 'y.c', 'one.o', env);
  assert.deepEqual([...edge.tokens], ['Bearer edge-token'], 'cc.remoteToken for the tier without its own');
  edge.entries.clear();
  await (await compileIn(t, 'accel cc --', homes[1] as string))(dir, 'y.c', 'two.o', env);
  const counters = await stats(homes[1] as string);
  assert.equal(counters['remote hit: tier 2'], 1, `the mirror accepted the writes: ${JSON.stringify(counters)}`);
  assert.equal(edge.keys().length, 1, 'written back to the edge');
  assert.ok(readFileSync(join(dir, 'one.o')).equals(readFileSync(join(dir, 'two.o'))));
});

async function freePort(): Promise<number> {
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** nginx serving `root` over plain WebDAV PUT (Bazel's layout needs nothing more), stopped after the test. */
async function startNginxDav(t: TestContext, dir: string): Promise<{ url: string; root: string }> {
  const port = await freePort();
  const root = join(dir, 'root');
  mkdirSync(join(root, 'cache'), { recursive: true });
  mkdirSync(join(dir, 'temp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
    (k) => `  ${k}_temp_path ${join(dir, 'temp', k)};`,
  );
  writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
${process.getuid?.() === 0 ? 'user root root;' : ''}
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 64; }
http {
${temps.join('\n')}
  access_log off;
  server {
    listen 127.0.0.1:${port};
    location /cache/ {
      root ${root};
      dav_methods PUT;
      create_full_put_path on;
      client_max_body_size 64m;
    }
  }
}
`,
  );
  const url = `http://127.0.0.1:${port}/cache`;
  await startNginx(t, dir, conf, () => fetch(`${url}/ac/${'0'.repeat(64)}`).then((r) => r.status === 404));
  return { url, root: join(root, 'cache') };
}

testNginx(
  'nginx with WebDAV PUT as tier 2: a miss is stored in its directory, and hits for an emptied tier 1',
  async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'z.c'), 'int z(void) { return 11; }\n');
    const edge = await startMinimalCache(t);
    const nginx = await startNginxDav(t, join(dir, 'nginx'));
    const env = { ACCEL_CC_REMOTE: `${edge.url} ${nginx.url}` };
    await (await compileIn(t, 'accel cc --', join(dir, 'one')))(dir, 'z.c', 'one.o', env);
    assert.deepEqual(readdirSync(join(nginx.root, 'ac')), edge.keys(), 'the manifest, as a file in nginx’s root');
    assert.ok(existsSync(join(nginx.root, 'cas')));
    edge.entries.clear();
    await (await compileIn(t, 'accel cc --', join(dir, 'two')))(dir, 'z.c', 'two.o', env);
    const counters = await stats(join(dir, 'two'));
    assert.equal(counters['remote hit: tier 2'], 1, JSON.stringify(counters));
    assert.equal(edge.keys().length, 1, 'written back to tier 1');
    assert.ok(readFileSync(join(dir, 'one.o')).equals(readFileSync(join(dir, 'two.o'))));
  },
);
