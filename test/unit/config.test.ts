import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/core/config.ts';
import { AccelError } from '../../src/core/errors.ts';
import { resolveHome } from '../../src/core/paths.ts';
import { tempDir } from '../helpers.ts';

test('defaults apply when there is no config.json', (t) => {
  const home = tempDir(t);
  assert.equal(loadConfig(home, {}).config.store.maxSize, '10G');
  assert.equal(loadConfig(home, {}).config.store.verifyHits, 'always', 'every whole blob served is hashed');
  assert.equal(loadConfig(home, {}).config.store.shared, false, 'private to its user');
});

test('store.verifyHits takes always or changed, from config.json or ACCEL_STORE_VERIFY_HITS', (t) => {
  const home = tempDir(t);
  assert.equal(loadConfig(home, { ACCEL_STORE_VERIFY_HITS: 'changed' }).config.store.verifyHits, 'changed');
  writeFileSync(join(home, 'config.json'), JSON.stringify({ store: { verifyHits: 'sometimes' } }));
  assert.throws(() => loadConfig(home, {}), /config key store\.verifyHits/);
});

test('ACCEL_* variables override config.json, which overrides defaults', (t) => {
  const home = tempDir(t);
  writeFileSync(join(home, 'config.json'), JSON.stringify({ store: { maxSize: '2G' } }));
  assert.equal(loadConfig(home, {}).config.store.maxSize, '2G');
  assert.equal(loadConfig(home, { ACCEL_STORE_MAX_SIZE: '3G' }).config.store.maxSize, '3G');
});

test('an unknown key is rejected with its dotted path and exit code 2', (t) => {
  const home = tempDir(t);
  writeFileSync(join(home, 'config.json'), JSON.stringify({ store: { maxSise: '2G' } }));
  assert.throws(
    () => loadConfig(home, {}),
    (e: unknown) =>
      e instanceof AccelError &&
      e.code === 'ACCEL_CONFIG_UNKNOWN_KEY' &&
      e.exitCode === 2 &&
      e.message.includes('store.maxSise'),
  );
});

test('a bad value or bad JSON names the problem', (t) => {
  const home = tempDir(t);
  writeFileSync(join(home, 'config.json'), JSON.stringify({ store: { maxSize: 'lots' } }));
  assert.throws(() => loadConfig(home, {}), /config key store\.maxSize: expected a size/);
  writeFileSync(join(home, 'config.json'), '{"store": ');
  assert.throws(
    () => loadConfig(home, {}),
    (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_CONFIG_INVALID_JSON',
  );
});

test('unknown ACCEL_ variables are reported for a warning, not silently used', (t) => {
  const home = tempDir(t);
  assert.deepEqual(loadConfig(home, { ACCEL_STORE_MAXSIZE: '1G', ACCEL_HOME: home }).unknownEnv, [
    'ACCEL_STORE_MAXSIZE',
  ]);
});

test('ACCEL_HOME resolution order: flag, ACCEL_HOME, XDG_CACHE_HOME, HOME', () => {
  assert.equal(resolveHome('/a', { ACCEL_HOME: '/b' }), '/a');
  assert.equal(resolveHome(undefined, { ACCEL_HOME: '/b', XDG_CACHE_HOME: '/c' }), '/b');
  assert.equal(resolveHome(undefined, { XDG_CACHE_HOME: '/c', HOME: '/h' }), '/c/accel');
  assert.equal(resolveHome(undefined, { HOME: '/h' }), '/h/.cache/accel');
});
