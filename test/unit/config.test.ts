import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderSettingsBlocks } from '../../build/settings-docs.ts';
import { loadConfig } from '../../src/core/config.ts';
import { AccelError } from '../../src/core/errors.ts';
import { resolveHome } from '../../src/core/paths.ts';
import { SETTINGS, settingsTable } from '../../src/core/settings.ts';
import { ROOT, tempDir } from '../helpers.ts';

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

test('a wrong type names the key, what it expects, what it got and where from (file or variable)', (t) => {
  const home = tempDir(t);
  const file = join(home, 'config.json');
  writeFileSync(file, JSON.stringify({ mirror: { port: 'eighty' } }));
  assert.throws(
    () => loadConfig(home, {}),
    (e: unknown) =>
      e instanceof AccelError &&
      e.code === 'ACCEL_CONFIG_INVALID' &&
      e.exitCode === 2 &&
      e.message === `config key mirror.port: expected a whole number from 0 to 65535, got "eighty" (from ${file})`,
  );
  // A bad variable is blamed on the variable, not on a config.json that is fine.
  writeFileSync(file, JSON.stringify({ mirror: { port: 8001 } }));
  assert.throws(
    () => loadConfig(home, { ACCEL_MIRROR_PORT: '99999' }),
    (e: unknown) =>
      e instanceof AccelError &&
      /config key mirror\.port: expected a whole number from 0 to 65535, got 99999 \(from ACCEL_MIRROR_PORT=99999\)/.test(
        e.message,
      ) &&
      /unset ACCEL_MIRROR_PORT/.test(e.hint ?? '') &&
      !e.message.includes(file),
  );
  assert.throws(() => loadConfig(home, { ACCEL_STORE_SHARED: 'maybe' }), /expected true or false, got "maybe"/);
  writeFileSync(file, JSON.stringify({ farm: { dirs: '/src' } }));
  assert.throws(() => loadConfig(home, {}), /config key farm\.dirs: expected a list of absolute paths, got "\/src"/);
});

test('the known-keys hint lists every setting of the schema, and every scalar has its variable', (t) => {
  const home = tempDir(t);
  writeFileSync(join(home, 'config.json'), JSON.stringify({ mirror: { remap: {} } }));
  const hintOf = () => {
    try {
      loadConfig(home, {});
    } catch (e) {
      assert.ok(e instanceof AccelError && e.code === 'ACCEL_CONFIG_UNKNOWN_KEY');
      return e.hint ?? '';
    }
    assert.fail('no error');
  };
  let hint = hintOf();
  for (const key of [
    'mirror.remaps',
    'mirror.condaChannels',
    'mirror.allow',
    'mirror.immutable',
    'mirror.proxyHosts',
    'mirror.stallTimeout',
  ]) {
    assert.ok(hint.includes(key), `${key} in ${hint}`);
  }
  writeFileSync(join(home, 'config.json'), JSON.stringify({ farms: {} }));
  hint = hintOf();
  for (const s of SETTINGS) assert.ok(hint.includes(s.key), `${s.key} in the hint`);
  assert.ok(SETTINGS.some((s) => s.key === 'farm.compilers') && SETTINGS.some((s) => s.key === 'farm.dirs'));
  // Each scalar setting is reachable from its variable, with the type the schema wants.
  writeFileSync(join(home, 'config.json'), '{}');
  const config = loadConfig(home, {
    ACCEL_MIRROR_STALL_TIMEOUT: '7',
    ACCEL_FARM_CORES: '3',
    ACCEL_STORE_SHARED: 'true',
    ACCEL_CC_REMOTE: 'http://127.0.0.1:1/cache',
  }).config;
  assert.equal(config.mirror.stallTimeout, 7);
  assert.equal(config.farm.cores, 3);
  assert.equal(config.store.shared, true);
  assert.equal(config.cc.remote, 'http://127.0.0.1:1/cache');
  for (const s of SETTINGS) {
    // A union that takes a string (cc.remote: a URL or tiers; mirror.grpcPort: a port or empty) has one too.
    const scalar = ['number', 'string', 'boolean', 'enum', 'union'].includes(s.kind);
    assert.equal(s.env !== undefined, scalar, `${s.key}: a variable exactly when it is a scalar`);
  }
});

test('the settings tables in docs/*.md are the ones the schema generates', () => {
  const docs = join(ROOT, 'docs');
  let blocks = 0;
  for (const name of readdirSync(docs).filter((f) => f.endsWith('.md'))) {
    const text = readFileSync(join(docs, name), 'utf8');
    blocks += (text.match(/<!-- settings/g) ?? []).length;
    assert.equal(renderSettingsBlocks(text), text, `docs/${name} is out of date: run npm run docs:settings`);
  }
  assert.ok(blocks >= 4, 'configuration.md, mirror.md, farm.md and store.md hold tables');
  const all = readFileSync(join(docs, 'configuration.md'), 'utf8');
  for (const s of SETTINGS) assert.ok(all.includes(`| \`${s.key}\` |`), `${s.key} documented`);
  assert.equal(settingsTable().split('\n').length, SETTINGS.length + 2);
});
