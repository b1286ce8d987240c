// `npm run check:feedstocks [-- NAME... --extra DIR --source NAME=FILE --upstream-channel URL --passes N]`: builds the real conda-forge
// feedstocks of ../shared/feedstocks (meta.yaml and recipe.yaml alike) for linux-aarch64 as a new user would
// (unchanged recipes, Debian's orig tarballs as --source), then checks each package without trusting accel:
// ELF headers by readelf, the channel solved by rattler. `--extra DIR` adds the feedstocks under DIR (checkouts
// fetched by hand), with their sources given by `--source`. `--upstream-channel URL` (repeatable) is passed to
// every build (what the local channel lacks is solved from it) and rattler's check solves against it too.
// `--passes N`: 3 (cold, rebuilt after a bump, rebuilt with --no-build-cache), 2 or 1 (the cold pass). Prints a Markdown table for docs/benchmarks.md.
// Needs the cross toolchain, qemu-user-static and the build tools (.ci/run installs them); downloads the shared
// set's sources once with get-sources.
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FeedstockResult } from '../src/conda/builder/context.ts';
import { PINNED_SYSROOTS } from '../src/conda/builder/sysroot.ts';
import {
  buildArgs,
  bumpBuildNumbers,
  elfMachines,
  fetchSources,
  payloadDigests,
  recipeFile,
  SHARED_FEEDSTOCKS,
  sharedFeedstocks,
  solveWithRattler,
  sourceRows,
  sysrootGlibc,
} from '../test/feedstock-set.ts';
import { SYSROOT_DEBS } from '../test/sysroot-debs.ts';

const MAIN = join(import.meta.dirname, '..', 'src', 'main.ts');
const argv = process.argv.slice(2);
const extraDirs: string[] = [];
const extraSources: string[] = [];
const upstreams: string[] = [];
const picked: string[] = [];
let passes = 3;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i] as string;
  if (a === '--extra') extraDirs.push(argv[++i] as string);
  else if (a === '--source') extraSources.push('--source', argv[++i] as string);
  else if (a === '--upstream-channel') upstreams.push((argv[++i] as string).replace(/\/+$/, ''));
  else if (a === '--passes') passes = Number(argv[++i]);
  else picked.push(a);
}
if (![1, 2, 3].includes(passes)) throw new Error('check: --passes takes 1, 2 or 3');
// The operator named these channels: they may be on a loopback or private address (a mirror serving fixtures).
const upstreamArgs = upstreams.flatMap((u) => ['--upstream-channel', u, '--allow', new URL(u).host]);
/** Every feedstock by name: the shared set's, then those under each --extra directory. */
const dirs = new Map(sharedFeedstocks().map((n) => [n, join(SHARED_FEEDSTOCKS, `${n}-feedstock`)]));
const extra = new Set<string>();
for (const d of extraDirs) {
  for (const e of readdirSync(d).filter((x) => x.endsWith('-feedstock') && recipeFile(join(d, x)))) {
    const n = e.replace(/-feedstock$/, '');
    dirs.set(n, realpathSync(join(d, e)));
    extra.add(n);
  }
}
const shared = sharedFeedstocks();
const names = picked.length > 0 ? picked : [...shared, ...extra];
const jobs = process.env.JOBS ?? '2';
fetchSources(names.filter((n) => !extra.has(n)));
const work = mkdtempSync(join(tmpdir(), 'accel-check-feedstocks-'));
const set = join(work, 'feedstocks');
mkdirSync(set, { recursive: true });
for (const n of names) {
  const dir = dirs.get(n);
  if (!dir || !existsSync(dir))
    throw new Error(`check: no feedstock ${n} (give its checkout's directory with --extra)`);
  symlinkSync(dir, join(set, `${n}-feedstock`));
}
const format = (n: string) => (recipeFile(dirs.get(n) as string)?.endsWith('recipe.yaml') ? 'v1' : 'meta.yaml');
const home = join(work, 'home');
const channel = join(work, 'channel');
const accel = (args: string[]) =>
  spawnSync(process.execPath, [MAIN, '--home', home, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });

process.stderr.write(`check: ${names.length} feedstocks from ${SHARED_FEEDSTOCKS}, work in ${work}\n`);
const rendered = new Map<string, string>();
for (const n of names) {
  const r = accel(['--json', 'conda', 'render', join(set, `${n}-feedstock`), '--target-platform', 'linux-aarch64']);
  rendered.set(n, r.status === 0 ? 'yes' : `no: ${/\[(ACCEL_[A-Z_]+)\]/.exec(r.stderr)?.[1] ?? r.stderr.trim()}`);
}
/** `accel conda build --keep-going` of the set in `dir`: its wall seconds and per-feedstock results. */
function buildSet(dir: string, extraArgs: string[] = []): { wall: number; results: FeedstockResult[] } {
  const started = performance.now();
  const r = spawnSync(
    process.execPath,
    [
      MAIN,
      ...buildArgs(home, channel, dir, names, jobs),
      ...extraSources,
      ...upstreamArgs,
      '--keep-going',
      ...extraArgs,
    ],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const wall = (performance.now() - started) / 1000;
  return { wall, results: (JSON.parse(r.stdout) as { results: FeedstockResult[] }).results };
}
// The pinned sysroot's .debs, when .ci/run (test/sysroot-debs.ts) downloaded them: into the store, so the
// builds fetch nothing; otherwise the first build fetches them from this machine's Debian archive.
for (const deb of PINNED_SYSROOTS.flatMap((x) => x.debs)) {
  const file = join(SYSROOT_DEBS, deb.path);
  if (existsSync(file)) accel(['store', 'put', file]);
}
const { wall, results } = buildSet(set);
const glibc = sysrootGlibc();
/**
 * The channel rattler's check solves against: the local one, or with upstreams a channel whose repodata is the
 * union of theirs and the local one's (the local record first, as the builds take it); rattler reads only
 * repodata to solve.
 */
async function checkedChannel(): Promise<string> {
  if (upstreams.length === 0) return channel;
  const union = join(work, 'rattler-union', 'channel');
  for (const subdir of ['linux-aarch64', 'noarch']) {
    const merged = { info: { subdir }, packages: {}, 'packages.conda': {}, repodata_version: 1 };
    for (const url of [...upstreams].reverse()) {
      const res = await fetch(`${url}/${subdir}/repodata.json`);
      if (res.status === 404) continue;
      if (!res.ok) throw new Error(`check: ${url}/${subdir}/repodata.json: HTTP ${res.status}`);
      const r = (await res.json()) as Record<string, Record<string, unknown> | undefined>;
      Object.assign(merged.packages, r.packages);
      Object.assign(merged['packages.conda'], r['packages.conda']);
    }
    const local = repodata(subdir);
    Object.assign(merged['packages.conda'], local);
    mkdirSync(join(union, subdir), { recursive: true });
    writeFileSync(join(union, subdir, 'repodata.json'), JSON.stringify(merged));
  }
  return union;
}
const relation = new Map(sourceRows().map((r) => [r.feedstock, r.relation]));
function repodata(subdir: string): Record<string, { name: string; version: string; depends: string[] }> {
  try {
    return JSON.parse(readFileSync(join(channel, subdir, 'repodata.json'), 'utf8'))['packages.conda'];
  } catch {
    return {};
  }
}
const solved = await solveWithRattler(
  await checkedChannel(),
  results.flatMap((r) => r.packages.map((p) => p.name)),
  glibc,
);
const records = [...Object.values(repodata('linux-aarch64')), ...Object.values(repodata('noarch'))];
const glibcOf = (depends: string[]) =>
  /^__glibc >=([\d.]+)/.exec(depends.find((d) => d.startsWith('__glibc ')) ?? '')?.[1];
const newer = (a: string | undefined, b: string | undefined) =>
  !a ? b : !b ? a : a.localeCompare(b, 'en', { numeric: true }) >= 0 ? a : b;
/**
 * A package's glibc floor with its toolchain runtime: its own `__glibc >=X` and that of the newest libgcc and
 * libstdcxx of the channel it depends on (what a solver installs beside it).
 */
const floorWithRuntime = (file: string): string | undefined => {
  const rec = repodata(file.split('/')[0] as string)[file.split('/')[1] as string];
  if (!rec) return undefined;
  let floor = glibcOf(rec.depends);
  for (const name of ['libgcc', 'libstdcxx']) {
    if (!rec.depends.some((d) => d.split(' ')[0] === name)) continue;
    const runtime = records
      .filter((x) => x.name === name)
      .sort((a, b) => a.version.localeCompare(b.version, 'en', { numeric: true }))
      .at(-1);
    floor = newer(floor, runtime ? glibcOf(runtime.depends) : undefined);
  }
  return floor;
};
/** The glibc the build's programs and tests ran on: the pinned sysroot's, as its log says, else the machine's. */
const testedOn = (r: FeedstockResult): string => {
  if (!r.log) return '-';
  const log = accel(['store', 'get', r.log]).stdout;
  return /== sysroot \S+: glibc ([\d.]+)/.exec(log)?.[1] ?? `${glibc} (machine)`;
};
const floors: string[] = [];

const rows: string[] = [
  '| feedstock | recipe | source | rendered | built | own tests (qemu) | ELF all aarch64 | solved by rattler | glibc floor (with libgcc/libstdcxx) | tests ran on glibc | build s | accel overhead s | why not |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | ---: | ---: | --- |',
];
let good = 0;
for (const n of names) {
  const r = results.find((x) => x.feedstock === n);
  const built = r?.status === 'built' || r?.status === 'skipped';
  let elf = '-';
  let solve = '-';
  if (built && r) {
    const files = r.packages.flatMap((p) => elfMachines(join(channel, p.subdir, p.filename), work));
    const wrong = files.filter((f) => f.machine !== 'AArch64');
    elf = files.length === 0 ? 'no ELF' : wrong.length === 0 ? `yes (${files.length})` : `NO: ${wrong[0]?.file}`;
    const bad = r.packages.filter((p) => !solved.get(p.name)?.ok);
    solve = bad.length === 0 ? 'yes' : `NO: ${bad.map((p) => p.name).join(', ')}`;
  }
  if (built && elf !== '-' && !elf.startsWith('NO') && solve === 'yes') good++;
  let floor = '-';
  let ranOn = '-';
  if (built && r) {
    const own = r.packages.map((p) => floorWithRuntime(`${p.subdir}/${p.filename}`));
    const f = own.reduce<string | undefined>((a, b) => newer(a, b), undefined);
    floor = f ?? 'none';
    if (f) floors.push(f);
    ranOn = (r.tests?.run ?? 0) + (r.tests?.cached ?? 0) > 0 ? testedOn(r) : 'no tests';
  }
  const tests = built ? 'passed' : r?.error?.code === 'ACCEL_CONDA_TEST_FAILED' ? 'failed' : '-';
  const why = built
    ? ''
    : `${r?.status ?? 'not built'}: [${r?.error?.code ?? '?'}] ${(r?.error?.message ?? '').split('\n')[0]}`;
  rows.push(
    `| ${n} | ${format(n)} | ${relation.get(n) ?? (extra.has(n) ? 'given' : '?')} | ${rendered.get(n)} | ${r?.status ?? '-'} | ${tests} | ${elf} | ${solve} | ${floor} | ${ranOn} | ${r ? r.seconds.toFixed(1) : '-'} | ${r && built ? (r.seconds - r.scriptSeconds).toFixed(1) : '-'} | ${why.replace(/\|/g, '\\|')} |`,
  );
}
// Second pass: every build number bumped (in a copy of the set), rebuilt into the same store and channel: the
// build scripts that ran with the same inputs are not run again. Third pass: bumped again and rebuilt with
// --no-build-cache, so that every script runs and every compile the first pass cached is a hit. Package
// contents must not change apart from the number.
const bumped = (by: number) => {
  const dir = join(work, `bumped-${by}`);
  for (const n of names) cpSync(dirs.get(n) as string, join(dir, `${n}-feedstock`), { recursive: true });
  bumpBuildNumbers(dir, names, by);
  return dir;
};
const skipped = { wall: 0, results: [] as FeedstockResult[] };
const { wall: rewall, results: reresults } = passes >= 2 ? buildSet(bumped(100)) : skipped;
const { wall: ccwall, results: ccresults } = passes >= 3 ? buildSet(bumped(200), ['--no-build-cache']) : skipped;
const sum = (rs: FeedstockResult[], k: 'hit' | 'miss') => rs.reduce((n, r) => n + (r.cc?.[k] ?? 0), 0);
const scripts = (rs: FeedstockResult[], k: 'run' | 'reused') => rs.reduce((n, r) => n + (r.scripts?.[k] ?? 0), 0);
const tests = (rs: FeedstockResult[], k: 'run' | 'cached') => rs.reduce((n, r) => n + (r.tests?.[k] ?? 0), 0);
const rerows = [
  '| feedstock | cold s | rebuild s | rebuild / cold | scripts not run | rebuild s, scripts run | / cold | compiles cached | compiled | tests passed before | tests run | same contents |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
];
/** Whether every installed file of the cold build's packages has the same sha256 in a rebuild's. */
const sameContents = (a: FeedstockResult, b: FeedstockResult) => {
  for (const p of a.packages) {
    const q = b.packages.find((x) => x.name === p.name);
    if (!q) return `no: ${p.name} missing`;
    const x = payloadDigests(join(channel, p.subdir, p.filename), join(work, 'a'));
    const y = payloadDigests(join(channel, q.subdir, q.filename), join(work, 'b'));
    const differ = [...x].filter(([f, d]) => y.get(f) !== d).map(([f]) => f);
    if (differ.length > 0 || x.size !== y.size) return `no: ${p.name} ${differ[0] ?? 'file list'}`;
  }
  return 'yes';
};
let coldSum = 0;
let warmSum = 0;
let ccSum = 0;
for (const n of names) {
  const a = results.find((x) => x.feedstock === n);
  const b = reresults.find((x) => x.feedstock === n);
  const c = ccresults.find((x) => x.feedstock === n);
  if (a?.status !== 'built' || b?.status !== 'built' || (passes >= 3 && c?.status !== 'built')) continue;
  coldSum += a.seconds;
  warmSum += b.seconds;
  ccSum += c?.seconds ?? 0;
  const sb = sameContents(a, b);
  const sc = c ? sameContents(a, c) : 'yes';
  const same = sb === 'yes' && sc === 'yes' ? 'yes' : sb === 'yes' ? `scripts run: ${sc}` : sb;
  rerows.push(
    `| ${n} | ${a.seconds.toFixed(1)} | ${b.seconds.toFixed(1)} | ${(b.seconds / a.seconds).toFixed(2)} | ${b.scripts?.reused ?? 0} of ${(b.scripts?.reused ?? 0) + (b.scripts?.run ?? 0)} | ${c?.seconds.toFixed(1) ?? '-'} | ${c ? (c.seconds / a.seconds).toFixed(2) : '-'} | ${c?.cc?.hit ?? '-'} | ${c?.cc?.miss ?? '-'} | ${b.tests?.cached ?? '-'} | ${b.tests?.run ?? '-'} | ${same} |`,
  );
}
const packages = results.flatMap((r) => r.packages).length;
const noCache =
  passes >= 3
    ? ` Raised by 200 and rebuilt with --no-build-cache (every script runs, its compiles through the compile cache): ${ccwall.toFixed(0)} s wall (${((100 * ccwall) / wall).toFixed(0)} %), per feedstock ${ccSum.toFixed(0)} s (${((100 * ccSum) / Math.max(coldSum, 1)).toFixed(0)} %); ${sum(ccresults, 'hit')} compiles came from the cache, ${sum(ccresults, 'miss')} were compiled (the cold pass compiled ${sum(results, 'miss')}).`
    : ' Not rebuilt with --no-build-cache (--passes 2).';
const rebuilt =
  passes === 1
    ? ['Cold pass only (`--passes 1`): not rebuilt after a build number bump.', '']
    : [
        `### Rebuilt after a build number bump (\`accel conda build\` through its build results and compile cache)`,
        '',
        `Every feedstock that built, its build number raised by 100 in a copy of the recipe, rebuilt into the same store: ${rewall.toFixed(0)} s wall against ${wall.toFixed(0)} s cold (${((100 * rewall) / wall).toFixed(0)} %); per feedstock ${warmSum.toFixed(0)} s against ${coldSum.toFixed(0)} s (${((100 * warmSum) / Math.max(coldSum, 1)).toFixed(0)} %); ${scripts(reresults, 'reused')} build scripts had run before with the same inputs and were not run again, ${scripts(reresults, 'run')} ran.${noCache} ${tests(reresults, 'cached')} outputs' tests had passed before with the same inputs and were not run again, ${tests(reresults, 'run')} ran. "Same contents": every installed file of every package of ${passes >= 3 ? 'both rebuilds' : 'the rebuild'} has the same sha256 as the cold build's (info/ differs by the build number).`,
        '',
        ...rerows,
        '',
      ];
const against = upstreams.length > 0 ? ` Upstream channels: ${upstreams.join(', ')}.` : '';
process.stdout.write(
  [
    `## Real conda-forge feedstocks (\`npm run check:feedstocks\`, ${new Date().toISOString().slice(0, 10)})`,
    '',
    `${good} of ${names.length} feedstocks built for linux-aarch64 unchanged, passed their own tests under qemu, hold only aarch64 ELF files and solve with rattler (against __glibc ${glibc}); ${packages} packages in ${wall.toFixed(0)} s wall, --jobs ${jobs}. Channel: ${channel} (${(existsSync(channel) ? readdirSync(channel) : []).join(', ')}).${against}`,
    '',
    `glibc floor of each feedstock's packages with the libgcc/libstdcxx they depend on: ${floors.filter((f) => f === '2.17').length} of ${floors.length} at 2.17, ${floors.filter((f) => f.localeCompare('2.28', 'en', { numeric: true }) <= 0).length} at or below 2.28 (RHEL 8); highest ${floors.reduce<string | undefined>((a, b) => newer(a, b), undefined) ?? '-'}.`,
    '',
    ...rows,
    '',
    ...rebuilt,
  ].join('\n'),
);
