import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AccelError } from '../../src/core/errors.ts';
import { formatSize, parseSize } from '../../src/core/size.ts';
import { parseDigest } from '../../src/store/digest.ts';

const HEX = 'ab'.repeat(32);

test('parseSize reads binary units and rejects junk with a usage error', () => {
  assert.equal(parseSize('0'), 0);
  assert.equal(parseSize('1024'), 1024);
  assert.equal(parseSize('500M'), 500 * 2 ** 20);
  assert.equal(parseSize('10G'), 10 * 2 ** 30);
  assert.equal(parseSize('1.5k'), 1536);
  assert.equal(parseSize('2GiB'), 2 * 2 ** 30);
  for (const bad of ['', 'G', '10X', '-1G', '1e9']) {
    assert.throws(
      () => parseSize(bad),
      (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_USAGE_BAD_SIZE' && e.exitCode === 2,
      bad,
    );
  }
  assert.equal(formatSize(1536), '1.50 KiB');
});

test('parseDigest accepts bare and sha256:-prefixed hex in any case, nothing else', () => {
  assert.equal(parseDigest(HEX), HEX);
  assert.equal(parseDigest(`sha256:${HEX.toUpperCase()}`), HEX);
  for (const bad of ['', 'abc', `${HEX}0`, `md5:${HEX}`, 'zz'.repeat(32), `../${HEX}`]) {
    assert.throws(
      () => parseDigest(bad),
      (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_STORE_BAD_DIGEST' && e.exitCode === 2,
      bad,
    );
  }
});
