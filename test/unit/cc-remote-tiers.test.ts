import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { CacheHealth, cacheHealthFor } from '../../src/cc/cache-health.ts';
import { CacheServer } from '../../src/cc/cache-server.ts';
import { rendezvousOwner } from '../../src/cc/rendezvous.ts';
import { loadConfig } from '../../src/core/config.ts';
import { AccelError } from '../../src/core/errors.ts';
import { parseRemoteTiers, RemoteSpecProblem } from '../../src/core/remote-tiers.ts';
import { tempDir } from '../helpers.ts';

const key = (i: number) => createHash('sha256').update(`key ${i}`).digest('hex');

test('cc.remote: one URL, tiers separated by spaces, ccache shard strings and objects parse to the same tiers', () => {
  assert.deepEqual(parseRemoteTiers(''), []);
  assert.deepEqual(parseRemoteTiers('http://a:8000/cache'), [{ shards: [{ url: 'http://a:8000/cache', weight: 1 }] }]);
  const fromString = parseRemoteTiers('http://edge:8000/cache  http://c-*.lan:8000/cache|shards=a,b(2.5),c');
  const fromList = parseRemoteTiers([
    'http://edge:8000/cache',
    {
      shards: [
        'http://c-a.lan:8000/cache',
        { url: 'http://c-b.lan:8000/cache', weight: 2.5 },
        { url: 'http://c-c.lan:8000/cache' },
      ],
    },
  ]);
  const expected = [
    { shards: [{ url: 'http://edge:8000/cache', weight: 1 }] },
    {
      shards: [
        { url: 'http://c-a.lan:8000/cache', weight: 1 },
        { url: 'http://c-b.lan:8000/cache', weight: 2.5 },
        { url: 'http://c-c.lan:8000/cache', weight: 1 },
      ],
    },
  ];
  assert.deepEqual(fromString, expected);
  assert.deepEqual(fromList, expected);
  assert.deepEqual(parseRemoteTiers([{ url: 'https://x/cache', token: 't' }]), [
    { shards: [{ url: 'https://x/cache', weight: 1 }], token: 't' },
  ]);
  // Ports as shard names: what the integration tests use on loopback.
  assert.deepEqual(
    parseRemoteTiers('http://127.0.0.1:*/cache|shards=4001,4002(3)'),
    parseRemoteTiers([{ shards: ['http://127.0.0.1:4001/cache', { url: 'http://127.0.0.1:4002/cache', weight: 3 }] }]),
  );
});

test('cc.remote: every malformed tier is refused at load with ACCEL_CONFIG_INVALID, what is wrong and a hint', (t) => {
  const bad: [unknown, RegExp][] = [
    ['ftp://a/cache', /only http:\/\/ and https:\/\//],
    ['not a url', /is not a URL/],
    ['http://c-*.lan/cache', /needs \|shards=/],
    ['http://c.lan/cache|shards=a,b', /one "\*"/],
    ['http://c-*.lan/cache|shards=a,b(0)', /weight of b\(0\) is not a number > 0/],
    ['http://c-*.lan/cache|shards=a,b(x)', /weight of b\(x\)/],
    ['http://c-*.lan/cache|shards=a,,b', /"" is not NAME or NAME\(WEIGHT\)/],
    ['http://c-*.lan/cache|layout=bazel', /the only attribute/],
    ['http://a/cache http://a/cache', /named twice/],
    [[{ url: 'http://a/cache', shards: ['http://b/cache'] }], /either "url" or "shards"/],
    [[{ shards: [] }], /at least one server/],
    [[{ shards: [{ url: 'http://b/cache', weight: -1 }] }], /cc\.remote\.0\.shards\.0.*not a number > 0/],
  ];
  const home = tempDir(t);
  for (const [remote, why] of bad) {
    writeFileSync(join(home, 'config.json'), JSON.stringify({ cc: { remote } }));
    assert.throws(
      () => loadConfig(home, {}),
      (err: unknown) => {
        assert.ok(err instanceof AccelError);
        assert.equal(err.code, 'ACCEL_CONFIG_INVALID');
        assert.match(err.message, why);
        assert.match(err.hint ?? '', /docs\/cc\.md.*tiers and shards/);
        return true;
      },
      JSON.stringify(remote),
    );
    assert.ok(parseRemoteTiers(remote as string) instanceof RemoteSpecProblem);
  }
  writeFileSync(join(home, 'config.json'), '{}');
  const fromEnv = loadConfig(home, { ACCEL_CC_REMOTE: 'http://a/cache http://b-*/cache|shards=x,y' }).config;
  assert.equal(fromEnv.cc.remote, 'http://a/cache http://b-*/cache|shards=x,y');
  assert.throws(() => loadConfig(home, { ACCEL_CC_REMOTE: 'http://b-*/cache' }), /fix ACCEL_CC_REMOTE|needs \|shards/);
});

test('rendezvous hashing: deterministic, spread by weight, and removing a shard moves only its keys', () => {
  const shards = [
    { id: 'http://a/cache', weight: 1 },
    { id: 'http://b/cache', weight: 2 },
    { id: 'http://c/cache', weight: 1 },
  ];
  // Pinned: every client, every version, whatever the order of the list, picks the same shard for a key.
  const owners = (list: typeof shards) =>
    [0, 1, 2, 3, 4, 5, 6, 7].map((i) => rendezvousOwner(key(i), list).id.slice(7, 8)).join('');
  assert.equal(owners(shards), 'bbcbabca');
  assert.equal(owners([...shards].reverse()), 'bbcbabca');
  const counts = new Map<string, number>();
  const n = 20_000;
  for (let i = 0; i < n; i++) {
    const owner = rendezvousOwner(key(i), shards).id;
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
  }
  const share = (id: string) => (counts.get(id) ?? 0) / n;
  assert.ok(Math.abs(share('http://b/cache') - 0.5) < 0.02, `b (weight 2) owns about half: ${share('http://b/cache')}`);
  assert.ok(Math.abs(share('http://a/cache') - 0.25) < 0.02, `a owns about a quarter: ${share('http://a/cache')}`);
  assert.ok(Math.abs(share('http://c/cache') - 0.25) < 0.02, `c owns about a quarter: ${share('http://c/cache')}`);
  const without = shards.filter((s) => s.id !== 'http://c/cache');
  for (let i = 0; i < 2000; i++) {
    const before = rendezvousOwner(key(i), shards).id;
    if (before !== 'http://c/cache') assert.equal(rendezvousOwner(key(i), without).id, before, 'only c’s keys move');
  }
  assert.throws(() => rendezvousOwner(key(0), []), /no shards/);
});

test('a cache server that fails is not asked again for a while, by this process or the next one of the home', async (t) => {
  let requests = 0;
  let status = 503;
  const server = createServer((_req, res) => {
    requests++;
    res.writeHead(status).end(status === 200 ? 'blob' : '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/cache`;
  const home = tempDir(t);
  const one = new CacheServer({ url, weight: 1, token: undefined, health: cacheHealthFor(home) });
  assert.equal(await one.get('ac/x'), undefined);
  assert.equal(await one.get('ac/x'), undefined);
  assert.equal(await one.put('ac/x', Buffer.from('y')), false);
  assert.equal(requests, 1, 'asked once, then remembered as down');
  // Another process of the same home reads the same memory.
  const other = new CacheServer({ url, weight: 1, token: undefined, health: cacheHealthFor(home) });
  assert.equal(await other.get('ac/x'), undefined);
  assert.equal(requests, 1);
  // After the window it is asked again; an answer forgets it.
  status = 200;
  const later = new CacheHealth(join(home, 'run', 'cache-down.json'));
  assert.equal(later.isDown(url, Date.now() + 31_000), false);
  const fresh = new CacheServer({ url, weight: 1, token: undefined, health: new CacheHealth() });
  assert.equal((await fresh.get('cas/y'))?.toString(), 'blob');
  // A refused connection marks it down just the same, and costs no wait.
  server.close();
  server.closeAllConnections();
  const refused = new CacheServer({ url, weight: 1, token: undefined, health: new CacheHealth() });
  assert.equal(await refused.get('ac/x'), undefined);
  assert.equal(refused.down, true);
});
