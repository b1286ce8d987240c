// Start-up of the single executable beside bare Node and ccache, median of many runs, plus binary sizes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fmt, medianMs, sh } from './util.ts';

const ROOT = resolve(import.meta.dirname, '..');
const EXE = join(ROOT, 'build', 'out', 'accel-linux-x64');
const RUNS = 30;

export async function benchStartup(print: (line: string) => void): Promise<void> {
  print('## Start-up (`bench/startup.ts`)\n');
  if (!existsSync(EXE)) {
    print(`skipped: ${EXE} is not built (\`npm run build\` first)\n`);
    return;
  }
  const home = mkdtempSync(join(tmpdir(), 'accel-bench-home-'));
  try {
    const input = join(home, 'one-kb');
    writeFileSync(input, Buffer.alloc(1024, 7));
    const digest = exec(EXE, ['--home', home, 'store', 'put', input]).split(' ')[0] as string;
    exec(EXE, ['--home', home, 'store', 'get', digest]); // unpack the native addon before timing
    const ccache = spawnSync('ccache', ['--version']).status === 0;
    const rows: [string, number][] = [
      ['`accel --version`', await timeCmd(EXE, ['--version'])],
      ['`accel store get <1 KB blob>`', await timeCmd(EXE, ['--home', home, 'store', 'get', digest])],
      [`\`node -e 0\` (Node ${process.versions.node}, the same Node)`, await timeCmd(process.execPath, ['-e', '0'])],
    ];
    if (ccache) rows.push(['`ccache --version`', await timeCmd('ccache', ['--version'])]);
    const base = rows[2]?.[1] as number;
    print(`Median of ${RUNS} runs each, spawned from Node (spawn cost included in every row alike).\n`);
    print('| command | median ms | ÷ `node -e 0` |');
    print('| --- | ---: | ---: |');
    for (const [what, ms] of rows) print(`| ${what} | ${fmt(ms)} | ${fmt(ms / base, 2)} |`);
    if (!ccache) print('\nccache is not installed (`apt-get install ccache`), so its row is missing.');
    const size = statSync(EXE).size;
    const gz = Number(sh(`gzip -c "${EXE}" | wc -c`).trim());
    print(`\n- binary: ${fmt(size / 2 ** 20)} MiB stripped, ${fmt(gz / 2 ** 20)} MiB gzipped (accel-linux-x64)`);
    print('');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

function exec(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

function timeCmd(cmd: string, args: string[]): Promise<number> {
  exec(cmd, args); // warm the page cache
  return medianMs(RUNS, () => exec(cmd, args));
}
