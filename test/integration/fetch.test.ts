import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { silentLog } from '../../src/core/log.ts';
import { Fetcher } from '../../src/fetch/fetcher.ts';
import { Store } from '../../src/store/store.ts';
import { startFakeUpstream } from '../fake-upstream.ts';
import { sha256, tempDir } from '../helpers.ts';

test('a reader that starts after the download was stored still gets every byte', async (t) => {
  const up = await startFakeUpstream();
  t.after(() => up.close());
  const body = randomBytes(700_000);
  up.files.set('/late-1.0.tar.gz', { body });
  const store = Store.open({ home: tempDir(t) });
  t.after(() => store.close());
  const fetcher = new Fetcher(store, { allow: [up.origin], stallMs: 5000, log: silentLog });
  const { download } = fetcher.fetch('k', { candidates: [`http://${up.origin}/late-1.0.tar.gz`] });
  const info = await download.done;
  assert.equal(info?.digest, sha256(body));
  const chunks: Buffer[] = [];
  for await (const chunk of download.read()) chunks.push(Buffer.from(chunk));
  assert.equal(sha256(Buffer.concat(chunks)), sha256(body));
  assert.equal(fetcher.inflight, 0);
});

test('failover: candidates are tried in order past a 404 and a refused upstream', async (t) => {
  const up = await startFakeUpstream();
  t.after(() => up.close());
  up.files.set('/b/x-1.tar.gz', { body: Buffer.from('from b') });
  const store = Store.open({ home: tempDir(t) });
  t.after(() => store.close());
  const fetcher = new Fetcher(store, { allow: [up.origin], stallMs: 5000, log: silentLog });
  const ok = fetcher.fetch('a', {
    candidates: [
      `http://${up.origin}/a/x-1.tar.gz`,
      `http://127.0.0.1:1/b/x-1.tar.gz`,
      `http://${up.origin}/b/x-1.tar.gz`,
    ],
  });
  const head = await ok.download.head;
  assert.equal(head.kind, 'body');
  assert.equal(head.url, `http://${up.origin}/b/x-1.tar.gz`);
  assert.ok(await ok.download.done);
});
