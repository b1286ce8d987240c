// Opt-in (ACCEL_TEST_REAL_APT=1): the machine's own Debian archive, read from its apt sources, as upstream.
// Downloads a few MB from the archive, so CI does not run it: test/opt-in.txt lists it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLog } from '../../src/core/log.ts';
import { readMachineSources, remapNameFor } from '../../src/mirror/apt/sources.ts';
import { createMirrorServer } from '../../src/mirror/server.ts';
import { Store } from '../../src/store/store.ts';
import { aptGet, debsDownloaded } from '../apt-fixture.ts';
import { tempDir } from '../helpers.ts';

const source = readMachineSources().find((s) => s.types.includes('deb') && s.uris[0]?.startsWith('http'));
const skip =
  process.env.ACCEL_TEST_REAL_APT !== '1'
    ? 'opt-in: set ACCEL_TEST_REAL_APT=1'
    : !source && 'no http apt source on this machine';

test("the machine's own archive through the mirror: install --download-only, then the same offline", {
  skip,
  timeout: 600_000,
}, async (t) => {
  if (!source) return;
  const uri = (source.uris[0] as string).replace(/\/+$/, '');
  const remap = remapNameFor(uri);
  const suite = source.suites[0] as string;
  const home = tempDir(t);
  const run = async (offline: boolean) => {
    const store = Store.open({ home });
    const server = createMirrorServer({
      store,
      log: silentLog,
      port: 0,
      bind: '127.0.0.1',
      offline,
      token: '',
      cacheToken: 'unused',
      ttlSeconds: 3600,
      stallSeconds: 60,
      remaps: { [remap]: [uri] },
      immutable: [],
      allow: [],
    });
    const { port } = await server.listen();
    try {
      const root = tempDir(t);
      const signedBy = source.signedBy ? `[signed-by=${source.signedBy}] ` : '';
      const sourcesList = `deb ${signedBy}http://127.0.0.1:${port}/r/${remap}/ ${suite} main\n`;
      const update = await aptGet(['update'], { sourcesList, root });
      assert.equal(update.code, 0, update.stderr);
      const install = await aptGet(['install', '--download-only', '-y', 'hello'], { sourcesList, root });
      assert.equal(install.code, 0, install.stderr);
      return debsDownloaded(root);
    } finally {
      await server.close();
      store.close();
    }
  };
  const online = await run(false);
  assert.ok(
    online.some((d) => d.startsWith('hello_')),
    String(online),
  );
  assert.deepEqual(await run(true), online);
});
