// The status page as people see it: rendered by a real browser (Debian's chromium, headless) from a mirror
// that has served hits, misses and failures.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { startFakeUpstream } from '../fake-upstream.ts';
import { needsTools, runCommand, tempDir } from '../helpers.ts';
import { startTestMirror } from '../mirror-harness.ts';

/** What headless Chromium shows after the page ran its scripts for `ms` of virtual time: the DOM as text. */
async function render(t: TestContext, url: string, ms: number): Promise<string> {
  const profile = tempDir(t, 'accel-chromium-');
  const r = await runCommand('chromium', [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    `--user-data-dir=${profile}`,
    `--virtual-time-budget=${ms}`,
    '--dump-dom',
    url,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .toString()
    .replace(/<script[\s\S]*?<\/script>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)))
    .replace(/\s+/g, ' ');
}

test('the status page in a browser: hit rate, sizes in units, upstreams, latest failures and downloads; it refreshes in place', {
  ...needsTools('chromium'),
  timeout: 120_000,
}, async (t) => {
  const up = await startFakeUpstream();
  t.after(() => up.close());
  up.files.set('/pkgs/tool-1.0.tar.gz', { body: Buffer.alloc(3 << 20, 1) });
  up.files.set('/broken-2.0.tar.gz', { body: Buffer.alloc(0), status: 503 });
  const m = await startTestMirror(t, { allow: [up.origin] });
  const get = async (path: string) => (await fetch(`${m.base}${path}`)).arrayBuffer();
  await get(`/http/${up.origin}/pkgs/tool-1.0.tar.gz`); // miss: a download of 3 MiB
  await get(`/http/${up.origin}/pkgs/tool-1.0.tar.gz`); // hit
  await get(`/http/${up.origin}/pkgs/tool-1.0.tar.gz`); // hit
  await get(`/http/${up.origin}/broken-2.0.tar.gz`); // the upstream fails: 502

  const text = await render(t, `${m.base}/_accel/status`, 5000);
  assert.match(text, /hit rate 66\.7 %/, text);
  assert.match(text, /served 9\.00 MiB/);
  assert.match(text, /fetched from upstreams 3\.00 MiB/);
  // Upstreams: host, downloads, bytes, failures.
  assert.match(text, new RegExp(`${up.origin} 1 3\\.00 MiB 1`));
  // The latest failure names the URL and what went wrong; the latest download its size.
  assert.match(text, new RegExp(`503 http://${up.origin}/broken-2\\.0\\.tar\\.gz upstream answered 503`));
  assert.match(text, new RegExp(`http://${up.origin}/pkgs/tool-1\\.0\\.tar\\.gz 3\\.00 MiB \\d+ ms`));
  // The page fetched itself again and swapped its content in place (5 s of virtual time, every 2 s).
  assert.match(text, /refreshed \d\d:\d\d:\d\d UTC/);
});
