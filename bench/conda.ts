// Builds the example feedstocks for linux-aarch64 end to end through the CLI, cold and as a no-op rebuild, and
// reports accel's overhead: wall time minus the time spent inside build.sh and test scripts. Goals (issue 9):
// ≤ 3 s overhead per package cold; ≤ 2 s for the whole no-op rebuild.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { fmt, sh } from './util.ts';

const ROOT = resolve(import.meta.dirname, '..');
const MAIN = join(ROOT, 'src', 'main.ts');
const FEEDSTOCKS = join(ROOT, 'examples', 'feedstocks');
const EXE = join(ROOT, 'build', 'out', `accel-linux-${process.arch}`);
const run = promisify(execFile);

interface Result {
  results: { feedstock: string; status: string; seconds: number; scriptSeconds: number; packages: unknown[] }[];
}

export async function benchConda(print: (line: string) => void): Promise<void> {
  const upstream = join(FEEDSTOCKS, 'upstream');
  const server = createServer((req, res) => {
    const name = (req.url ?? '').replace(/^\/accel-examples\//, '');
    if (!readdirSync(upstream).includes(name)) return void res.writeHead(404).end();
    res.writeHead(200).end(readFileSync(join(upstream, name)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = mkdtempSync(join(tmpdir(), 'accel-bench-conda-build-'));
  // Asynchronously: the source server runs in this process and must keep answering.
  const build = async (exe?: string): Promise<{ ms: number; out: Result }> => {
    const start = performance.now();
    const args = ['--home', join(dir, 'home'), '--json', 'conda', 'build', '--all', FEEDSTOCKS];
    args.push('--target-platform', 'linux-aarch64', '--channel', join(dir, 'channel'), '--allow', host, '--jobs', '2');
    const { stdout } = await run(exe ?? process.execPath, exe ? args : [MAIN, ...args], {
      env: { ...process.env, EXAMPLES_UPSTREAM: `http://${host}/accel-examples` },
    });
    return { ms: performance.now() - start, out: JSON.parse(stdout) as Result };
  };
  try {
    const cold = await build();
    const noops = [await build(), await build(), await build()];
    const scripts = cold.out.results.reduce((n, r) => n + r.scriptSeconds, 0) * 1000;
    const packages = cold.out.results.reduce((n, r) => n + r.packages.length, 0);
    const feedstocks = cold.out.results.length;
    const overhead = cold.ms - scripts;
    const noopMs = noops.map((n) => n.ms).sort((a, b) => a - b)[1] as number;
    const skipped = noops.every((n) => n.out.results.every((r) => r.status === 'skipped'));
    const node = performance.now();
    sh(`${process.execPath} -e 0`);
    const nodeMs = performance.now() - node;
    const version = performance.now();
    sh(`${process.execPath} ${MAIN} version`);
    const versionMs = performance.now() - version;

    print('## conda build (`bench/conda.ts`)');
    print('');
    print(
      `The example graph (${feedstocks} feedstocks, ${packages} packages: libgreet split in two, libshout, hello, ` +
        'greet-data) built for linux-aarch64 on x86-64 through the CLI, `--jobs 2`, sources from a local HTTP ' +
        'server; tests run under qemu-aarch64-static.',
    );
    print('');
    print('| run | wall ms | inside build and test scripts ms | overhead ms | overhead per package ms |');
    print('| --- | ---: | ---: | ---: | ---: |');
    print(
      `| cold (new store and channel) | ${fmt(cold.ms)} | ${fmt(scripts)} | ${fmt(overhead)} | ${fmt(overhead / packages)} |`,
    );
    print(`| no-op rebuild (median of 3, all skipped: ${skipped}) | ${fmt(noopMs)} | 0 | ${fmt(noopMs)} | – |`);
    // The single executable, when `npm run build` made it: one bundle, no type stripping at start-up.
    if (existsSync(EXE)) {
      const runs = [await build(EXE), await build(EXE), await build(EXE)];
      const ms = runs.map((n) => n.ms).sort((a, b) => a - b)[1] as number;
      const all = runs.every((n) => n.out.results.every((r) => r.status === 'skipped'));
      print(
        `| no-op rebuild, single executable (median of 3, all skipped: ${all}) | ${fmt(ms)} | 0 | ${fmt(ms)} | – |`,
      );
    }
    print('');
    for (const r of cold.out.results) {
      print(`- ${r.feedstock}: ${fmt(r.seconds * 1000)} ms, of which ${fmt(r.scriptSeconds * 1000)} ms in scripts`);
    }
    print(`- start-up alone: \`accel version\` from source ${fmt(versionMs)} ms, \`node -e 0\` ${fmt(nodeMs)} ms`);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
