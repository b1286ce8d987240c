import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { ROOT, type RunResult, runAccel } from '../helpers.ts';

/** What a linux-aarch64 build of the examples runs: the cross compilers, qemu for the tests, make. */
export const CROSS_BUILD_TOOLS = ['aarch64-linux-gnu-gcc', 'aarch64-linux-gnu-g++', 'qemu-aarch64-static', 'make'];

export const FEEDSTOCKS = join(ROOT, 'examples', 'feedstocks');
const UPSTREAM = join(FEEDSTOCKS, 'upstream');

/** The example sources' upstream on 127.0.0.1: counts requests, and can be stopped mid-test. */
export interface Upstream {
  base: string;
  host: string;
  requests: string[];
  stop(): Promise<void>;
}

export async function startUpstream(t: TestContext): Promise<Upstream> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const name = (req.url ?? '').replace(/^\/accel-examples\//, '');
    if (!/^[\w.-]+\.tar\.gz$/.test(name) || !readdirSync(UPSTREAM).includes(name)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/gzip' }).end(readFileSync(join(UPSTREAM, name)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let stopped = false;
  const stop = () =>
    new Promise<void>((resolve) => {
      if (stopped) return resolve();
      stopped = true;
      server.closeAllConnections();
      server.close(() => resolve());
    });
  t.after(stop);
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base: `http://${host}/accel-examples`, host, requests, stop };
}

/** A copy of the example feedstocks that a test may edit. */
export function copyFeedstocks(dir: string): string {
  const out = join(dir, 'feedstocks');
  for (const name of readdirSync(FEEDSTOCKS)) {
    if (name.endsWith('-feedstock')) cpSync(join(FEEDSTOCKS, name), join(out, name), { recursive: true });
  }
  return out;
}

export interface BuildRun {
  home: string;
  channel: string;
  upstream: Upstream;
}

/**
 * The TMPDIR of a run's builds, beside its home: the build workspaces ($TMPDIR/accel-conda-bld/<feedstock>-…)
 * are the test's own, so that tests building the same example feedstock at once never meet (ACCEL_CONDA_BUSY).
 * A second home beside the first (an uncached build to compare) shares it, and so builds on the same paths.
 */
export function buildTmp(run: BuildRun): string {
  const tmp = join(dirname(run.home), 'tmp');
  mkdirSync(tmp, { recursive: true });
  return tmp;
}

/** `accel conda build` for linux-aarch64 into the run's channel, from the test's upstream. */
export function condaBuild(run: BuildRun, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return runAccel(
    [
      '--home',
      run.home,
      '--json',
      'conda',
      'build',
      ...args,
      '--target-platform',
      'linux-aarch64',
      '--channel',
      run.channel,
      '--allow',
      run.upstream.host,
    ],
    { env: { EXAMPLES_UPSTREAM: run.upstream.base, TMPDIR: buildTmp(run), ...env } },
  );
}

export interface ResultJson {
  channel: string;
  results: {
    feedstock: string;
    status: string;
    packages: { name: string; filename: string; subdir: string; sha256: string }[];
  }[];
}

export function okJson(r: RunResult): ResultJson {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.toString()) as ResultJson;
}

export function statuses(j: ResultJson): Record<string, string> {
  return Object.fromEntries(j.results.map((r) => [r.feedstock, r.status]).sort());
}

export function failed(r: RunResult, code: string): void {
  assert.equal(r.code, 1, `expected exit 1, got ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`));
}
