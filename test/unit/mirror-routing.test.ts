import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AccelError } from '../../src/core/errors.ts';
import { embeddedIpv4, resolveUpstream } from '../../src/fetch/guard.ts';
import { isFresh, isImmutableUrl } from '../../src/mirror/freshness.ts';
import { frontPath } from '../../src/mirror/front.ts';
import { parseRange } from '../../src/mirror/respond.ts';
import { mirrorUrlFor, parseMirrorPath } from '../../src/mirror/url-map.ts';

test('mirror paths map to upstream URLs and back', () => {
  assert.deepEqual(parseMirrorPath('/https/github.com/a/b/archive/v1.tar.gz?x=1'), {
    kind: 'direct',
    url: 'https://github.com/a/b/archive/v1.tar.gz?x=1',
  });
  assert.deepEqual(parseMirrorPath('/http/example.invalid:8080/p'), {
    kind: 'direct',
    url: 'http://example.invalid:8080/p',
  });
  assert.deepEqual(parseMirrorPath('/r/debs/pool/main/z/zlib.deb'), {
    kind: 'remap',
    name: 'debs',
    path: 'pool/main/z/zlib.deb',
  });
  assert.equal(
    mirrorUrlFor('https://github.com/a/b/archive/v1.tar.gz', 'http://127.0.0.1:8000/'),
    'http://127.0.0.1:8000/https/github.com/a/b/archive/v1.tar.gz',
  );
  assert.throws(() => mirrorUrlFor('ftp://example.invalid/x', 'http://127.0.0.1:8000'), /only http and https/);
});

test('traversal in any spelling and unknown layouts are refused', () => {
  for (const probe of [
    '/https/h/../x',
    '/https/h/%2e%2E/x',
    '/https/h/a%2fb',
    '/https/h/a%5Cb',
    '/https/h/%00',
    '/https/h/%zz',
    '/https/h/.',
  ]) {
    assert.throws(
      () => parseMirrorPath(probe),
      (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_MIRROR_BAD_PATH',
      probe,
    );
  }
  for (const other of ['/', '/ftp/h/x', '/https', '/etc/passwd']) {
    assert.throws(
      () => parseMirrorPath(other),
      (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_MIRROR_NOT_FOUND',
    );
  }
});

test('versioned artifacts and by-hash paths are immutable; indexes are not', () => {
  const policy = { ttlSeconds: 60, immutable: [/\/releases\/download\//], negativeTtlSeconds: 60 };
  for (const url of [
    'https://h/zlib-1.3.1.tar.gz',
    'https://h/archive/v2.0.zip',
    'https://h/pool/main/z/zlib1g_1.2.13_amd64.deb',
    'https://h/dists/stable/main/binary-amd64/by-hash/SHA256/abc',
    'https://h/x/releases/download/latest/tool',
  ]) {
    assert.equal(isImmutableUrl(url, policy), true, url);
  }
  for (const url of [
    'https://h/dists/stable/InRelease',
    'https://h/simple/numpy/',
    'https://h/latest.tar.gz',
    'https://h/repodata.json',
  ]) {
    assert.equal(isImmutableUrl(url, policy), false, url);
  }
  assert.equal(isFresh({ immutable: false, fetchedAt: 1000 }, 1000 + 59_999, policy), true);
  assert.equal(isFresh({ immutable: false, fetchedAt: 1000 }, 1000 + 60_000, policy), false);
  assert.equal(isFresh({ immutable: true, fetchedAt: 0 }, 1e15, policy), true);
});

test('byte ranges: single ranges served, others ignored or unsatisfiable', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=50-500', 100), { start: 50, end: 99 });
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
  assert.equal(parseRange('items=0-1', 100), undefined);
});

test('upstreams on loopback, private and link-local addresses are refused unless allowed', async () => {
  for (const url of [
    'http://127.0.0.1/x',
    'http://10.1.2.3/x',
    'http://172.20.0.1/x',
    'http://192.168.1.1/x',
    'http://169.254.169.254/latest/meta-data',
    'http://[::1]/x',
    'http://[fe80::1]/x',
    'http://[::ffff:127.0.0.1]/x',
    'http://0.0.0.0/x',
    'http://localhost/x',
  ]) {
    await assert.rejects(
      resolveUpstream(url, []),
      (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_FETCH_REFUSED',
      url,
    );
  }
  assert.equal((await resolveUpstream('http://127.0.0.1:9000/x', ['127.0.0.1:9000'])).address, '127.0.0.1');
  await assert.rejects(resolveUpstream('http://127.0.0.1:9001/x', ['127.0.0.1:9000']), /refusing/);
  await assert.rejects(resolveUpstream('file:///etc/passwd', []), /only http and https/);
  await assert.rejects(resolveUpstream('http://user:pw@93.184.216.34/x', []), /credentials/);
});

test('the address guard sees IPv4 hidden in IPv6 and the ranges it missed (no traffic: literal addresses)', async () => {
  for (const host of [
    '[::ffff:0:127.0.0.1]',
    '[::ffff:0:7f00:1]',
    '[::127.0.0.1]',
    '[::a00:1]',
    '[::ffff:10.1.2.3]',
    '[64:ff9b::127.0.0.1]',
    '[64:ff9b::c0a8:101]',
    '[64:ff9b:1::5]',
    '[2002:7f00:1::]',
    '[2002:c0a8:101::1]',
    '[fec0::1]',
    '[fefe::1]',
    '[2001::1]',
    '198.18.0.1',
    '198.19.255.254',
    '192.0.2.7',
  ]) {
    await assert.rejects(
      resolveUpstream(`http://${host}/x`, []),
      (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_FETCH_REFUSED',
      host,
    );
  }
  // Public addresses in the same forms pass (resolving a literal sends nothing).
  for (const host of ['[64:ff9b::5db8:d822]', '[2002:5db8:d822::1]', '93.184.216.34', '198.20.0.1']) {
    assert.ok(await resolveUpstream(`http://${host}/x`, []), host);
  }
  assert.equal(embeddedIpv4('::ffff:0:10.0.0.1'), '10.0.0.1');
  assert.equal(embeddedIpv4('2002:0a00:0001::'), '10.0.0.1');
  assert.equal(embeddedIpv4('2001:db8::1'), undefined);
});

test('frontPath: only plain, immutable-looking paths get a link; traversal, queries and encodings stay with accel', () => {
  const home = '/h';
  assert.equal(frontPath(home, 'https://Example.ORG/a/b-1.0.tar.gz'), '/h/front/https/example.org/a/b-1.0.tar.gz');
  assert.equal(frontPath(home, 'http://127.0.0.1:8001/x.tgz'), '/h/front/http/127.0.0.1:8001/x.tgz');
  assert.equal(
    frontPath(home, 'r/debian/pool/main/h/hello_2.10-3_amd64.deb'),
    '/h/front/r/debian/pool/main/h/hello_2.10-3_amd64.deb',
  );
  for (const url of [
    'https://h/a/../../etc/passwd',
    'https://h/a/./b',
    'https://h/x.tar.gz?sha256=abc',
    'https://h/a%2e%2e/b',
    'https://h/dir/',
    'r/debian/dists/bookworm/InRelease',
    'r/debian@20260101/pool/x.deb',
    'ftp://h/x',
    'https://user@h/x',
  ]) {
    assert.equal(frontPath(home, url), undefined, url);
  }
});
