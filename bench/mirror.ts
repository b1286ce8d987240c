// The mirror beside nginx serving the same files from disk: warm throughput for one large file and for many
// small ones under parallel keep-alive clients, and what a cache miss costs over fetching from the upstream.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { canConnect, MAIN, type Server, startAccelMirror, stop, waitUntil } from './servers.ts';
import { fmt, median, sh } from './util.ts';

const MB = 2 ** 20;
const LARGE_SIZE = 200 * MB;
const LARGE_RUNS = 5;
const SMALL_SIZE = 100 * 1024;
const SMALL_COUNT = 200;
const WRK_THREADS = 2;
const WRK_CLIENTS = 16;
const WRK_SECONDS = 5;
const COLD_COUNT = 50;
const COLD_ROUNDS = 3;
/** /proc/<pid>/stat counts CPU time in clock ticks of 1/100 s on Linux. */
const CLOCK_TICKS = 100;

// Versioned archive names: the mirror treats them as immutable and serves its copy without revalidating.
const LARGE_NAME = 'big-1.0.tar.gz';
const smallName = (i: number) => `f-1.0-${i}.tar.gz`;
const coldName = (round: number, i: number) => `c-1.0-${round}-${i}.tar.gz`;

/** Cycles every connection through the small files; `done` prints one parseable line for the bench. */
const WRK_SCRIPT = `
local paths = {}
local n = 0
function init(args)
  for i = 0, tonumber(args[2]) - 1 do paths[#paths + 1] = args[1] .. "f-1.0-" .. i .. ".tar.gz" end
end
function request()
  n = n + 1
  return wrk.format("GET", paths[n % #paths + 1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", summary.requests, summary.bytes, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99)))
end
`;

interface Row {
  what: string;
  nginx: number;
  accel: number;
  better: 'higher' | 'lower';
  digits?: number;
}

export async function benchMirror(print: (line: string) => void): Promise<void> {
  print('## Mirror (`bench/mirror.ts`)\n');
  if (!installed('nginx', ['-v'])) {
    print('skipped: nginx is not installed (`apt-get install nginx`); it is both the peer and the upstream\n');
    return;
  }
  const hasWrk = installed('wrk', ['-v']);
  const root = mkdtempSync(join(tmpdir(), 'accel-bench-mirror-'));
  const children: ChildProcess[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const www = join(root, 'www');
    writeFiles(www);
    const nginx = await startNginx(root, www);
    children.push(nginx.child);
    const mirror = await startMirror(root, nginx.url);
    children.push(mirror.child);
    const viaMirror = `${mirror.url}/http/${nginx.url.slice('http://'.length)}`;
    const rows: Row[] = [];

    // 1. One large file, one client, both warm: nginx from the page cache, the mirror from its store.
    curlGet(`${nginx.url}/${LARGE_NAME}`, LARGE_SIZE);
    curlGet(`${viaMirror}/${LARGE_NAME}`, LARGE_SIZE, 'MISS');
    const largeNginx = median(repeat(LARGE_RUNS, () => curlGet(`${nginx.url}/${LARGE_NAME}`, LARGE_SIZE)));
    const largeAccel = median(repeat(LARGE_RUNS, () => curlGet(`${viaMirror}/${LARGE_NAME}`, LARGE_SIZE, 'HIT')));
    rows.push({ what: '1 x 200 MB, 1 client, warm: MB/s', nginx: largeNginx, accel: largeAccel, better: 'higher' });

    // 2. Many small files, parallel keep-alive clients; every file cached before the clock starts.
    for (let i = 0; i < SMALL_COUNT; i++) expect(await httpGet(`${viaMirror}/small/${smallName(i)}`, agent), 'MISS');
    for (let i = 0; i < SMALL_COUNT; i++) expect(await httpGet(`${viaMirror}/small/${smallName(i)}`, agent), 'HIT');
    let wrkNote = '- small files: skipped, wrk is not installed (`apt-get install wrk`)';
    if (hasWrk) {
      const script = join(root, 'cycle.lua');
      writeFileSync(script, WRK_SCRIPT);
      const n = wrkRun(script, nginx, '/small/', nginxPids(nginx.child));
      const a = wrkRun(script, mirror, `${new URL(viaMirror).pathname}/small/`, [mirror.child.pid as number]);
      const what = `${SMALL_COUNT} x 100 KB, ${WRK_CLIENTS} keep-alive clients, warm`;
      rows.push({ what: `${what}: requests/s`, nginx: n.rps, accel: a.rps, better: 'higher', digits: 0 });
      rows.push({ what: `${what}: MB/s`, nginx: n.mbps, accel: a.mbps, better: 'higher' });
      rows.push({ what: `${what}: p50 latency ms`, nginx: n.p50, accel: a.p50, better: 'lower', digits: 2 });
      rows.push({ what: `${what}: p99 latency ms`, nginx: n.p99, accel: a.p99, better: 'lower', digits: 2 });
      rows.push({ what: `${what}: server CPU µs/request`, nginx: n.cpu, accel: a.cpu, better: 'lower', digits: 0 });
      wrkNote = `- small files: \`wrk -t${WRK_THREADS} -c${WRK_CLIENTS} -d${WRK_SECONDS}s\` after a 1 s warm-up run, a Lua script cycling through the ${SMALL_COUNT} paths; server CPU is user + system time of the server processes (nginx master and worker, the mirror's one Node process) over the run`;
    }

    // 2b. nginx in front of the mirror (`accel mirror config nginx`): the same hits, served from the store by
    //     nginx through the front tree, beside plain nginx serving the same files from its own directory.
    const frontRows: Row[] = [];
    const front = await startFront(root, mirror.url);
    children.push(front.child);
    const viaFront = `${front.url}/http/${nginx.url.slice('http://'.length)}`;
    curlGet(`${viaFront}/${LARGE_NAME}`, LARGE_SIZE, '');
    const largeFront = median(repeat(LARGE_RUNS, () => curlGet(`${viaFront}/${LARGE_NAME}`, LARGE_SIZE, '')));
    frontRows.push({
      what: '1 x 200 MB, 1 client, warm: MB/s',
      nginx: largeNginx,
      accel: largeFront,
      better: 'higher',
    });
    if (hasWrk) {
      const script = join(root, 'cycle.lua');
      const n = wrkRun(script, nginx, '/small/', nginxPids(nginx.child));
      const f = wrkRun(script, front, `${new URL(viaFront).pathname}/small/`, nginxPids(front.child));
      const what = `${SMALL_COUNT} x 100 KB, ${WRK_CLIENTS} keep-alive clients, warm`;
      frontRows.push({ what: `${what}: requests/s`, nginx: n.rps, accel: f.rps, better: 'higher', digits: 0 });
      frontRows.push({ what: `${what}: MB/s`, nginx: n.mbps, accel: f.mbps, better: 'higher' });
      frontRows.push({ what: `${what}: p99 latency ms`, nginx: n.p99, accel: f.p99, better: 'lower', digits: 2 });
    }

    // 3. Cold misses: the mirror fetches from nginx, stores (fsync) and streams, beside asking nginx directly.
    const coldNginx: number[] = [];
    const coldAccel: number[] = [];
    for (let round = 0; round < COLD_ROUNDS; round++) {
      coldNginx.push(await perFileMs(agent, (i) => `${nginx.url}/cold/${coldName(round, i)}`));
      coldAccel.push(await perFileMs(agent, (i) => `${viaMirror}/cold/${coldName(round, i)}`, 'MISS'));
    }
    rows.push({
      what: '100 KB cold miss, 1 keep-alive client, sequential: ms/file',
      nginx: median(coldNginx),
      accel: median(coldAccel),
      better: 'lower',
      digits: 2,
    });

    const disk = sh(`df --output=source,fstype ${root} | tail -1`).trim().replace(/\s+/g, ' ');
    print(
      `nginx ${nginxVersion()} (\`worker_processes 1\`, sendfile, access_log off) beside the accel mirror ` +
        `(\`accel mirror serve\`, a separate Node ${process.versions.node} process), both on 127.0.0.1 serving the ` +
        `same random files; data on ${disk}; ${sh('nproc').trim()} cores shared with the load generator.\n`,
    );
    print(
      'ratio: how many times better nginx is, nginx ÷ accel for throughput (higher is better) and accel ÷ nginx for times and CPU (lower is better); above 1 means accel is slower.\n',
    );
    printRows(print, 'accel mirror', rows);
    print(
      'Through nginx in front of the mirror (`accel mirror config nginx`: hits served by a second nginx of the same configuration from the store, via the front tree of links; goal ≥ 0.9 of plain nginx, that is a ratio ≤ 1.11):\n',
    );
    printRows(print, 'nginx front of accel', frontRows);
    print(
      `- large file: \`curl -o /dev/null\`, median of ${LARGE_RUNS} runs after one unmeasured request each (for the mirror that one is the MISS that fills the cache; every measured one was a HIT, verified while it streams)`,
    );
    print(wrkNote);
    print(
      `- cold: ${COLD_COUNT} distinct 100 KB files in sequence over one keep-alive connection from the bench process (Node http), median of ${COLD_ROUNDS} rounds with fresh files; every mirror request was a MISS (fetch from nginx, write, fsync, index, stream)`,
    );
    print('- MB = 2^20 bytes');
    print('');
  } finally {
    agent.destroy();
    for (const child of children.reverse()) await stop(child);
    rmSync(root, { recursive: true, force: true });
  }
}

/** A table of rows beside nginx, with the ratio (above 1: worse than nginx). */
function printRows(print: (line: string) => void, column: string, rows: Row[]): void {
  print(`| measurement | nginx | ${column} | ratio |`);
  print('| --- | ---: | ---: | ---: |');
  for (const r of rows) {
    const ratio = r.better === 'higher' ? r.nginx / r.accel : r.accel / r.nginx;
    const d = r.digits ?? 1;
    print(`| ${r.what} (${r.better} is better) | ${fmt(r.nginx, d)} | ${fmt(r.accel, d)} | ${fmt(ratio, 2)} |`);
  }
  print('');
}

/** The store's verifyHits settings compared: what the mirror did before issue 18, and its default now. */
const VERIFY_MODES = [
  { mode: 'changed', what: 'before: hash when the file changed' },
  { mode: 'always', what: 'after: hash every hit' },
] as const;
const VERIFY_WRK_ROUNDS = 2;

/**
 * What hashing every hit costs: two mirrors side by side in one run, one hashing a whole blob only when its
 * file changed since it last hashed it (store.verifyHits 'changed', the behaviour before issue 18) and one
 * hashing every whole blob it serves (the default), measured in turns so that load on the machine hits both.
 */
export async function benchMirrorVerify(print: (line: string) => void): Promise<void> {
  print('## Mirror: hashing every hit (`bench/mirror.ts`, `npm run bench -- mirror-verify`)\n');
  if (!installed('nginx', ['-v']) || !installed('wrk', ['-v'])) {
    print('skipped: needs nginx (the upstream) and wrk (`apt-get install nginx wrk`)\n');
    return;
  }
  const root = mkdtempSync(join(tmpdir(), 'accel-bench-verify-'));
  const children: ChildProcess[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const www = join(root, 'www');
    mkdirSync(join(www, 'small'), { recursive: true });
    sh(`head -c ${LARGE_SIZE} /dev/urandom > ${join(www, LARGE_NAME)}`);
    for (let i = 0; i < SMALL_COUNT; i++) writeFileSync(join(www, 'small', smallName(i)), randomBytes(SMALL_SIZE));
    const nginx = await startNginx(root, www);
    children.push(nginx.child);
    const mirrors = [];
    for (const { mode, what } of VERIFY_MODES) {
      const home = join(root, `home-${mode}`);
      mkdirSync(home);
      writeFileSync(join(home, 'config.json'), JSON.stringify({ store: { verifyHits: mode } }));
      const args = ['--allow', nginx.url.slice('http://'.length)];
      const server = await startAccelMirror(home, join(root, `mirror-${mode}.log`), args);
      children.push(server.child);
      const via = `${server.url}/http/${nginx.url.slice('http://'.length)}`;
      curlGet(`${via}/${LARGE_NAME}`, LARGE_SIZE, 'MISS');
      for (let i = 0; i < SMALL_COUNT; i++) expect(await httpGet(`${via}/small/${smallName(i)}`, agent), 'MISS');
      for (let i = 0; i < SMALL_COUNT; i++) expect(await httpGet(`${via}/small/${smallName(i)}`, agent), 'HIT');
      mirrors.push({ what, server, via, large: [] as number[], small: [] as WrkResult[] });
    }
    for (let run = 0; run < LARGE_RUNS; run++) {
      for (const m of mirrors) m.large.push(curlGet(`${m.via}/${LARGE_NAME}`, LARGE_SIZE, 'HIT'));
    }
    const script = join(root, 'cycle.lua');
    writeFileSync(script, WRK_SCRIPT);
    for (let round = 0; round < VERIFY_WRK_ROUNDS; round++) {
      for (const m of mirrors) {
        m.small.push(wrkRun(script, m.server, `${new URL(m.via).pathname}/small/`, [m.server.child.pid as number]));
      }
    }
    const [before, after] = mirrors as [(typeof mirrors)[0], (typeof mirrors)[0]];
    const small = (m: typeof before, key: keyof WrkResult) => median(m.small.map((r) => r[key]));
    const rows: [string, number, number, number][] = [
      ['1 x 200 MB, 1 client, warm: MB/s', median(before.large), median(after.large), 1],
      [
        `${SMALL_COUNT} x 100 KB, ${WRK_CLIENTS} clients, warm: requests/s`,
        small(before, 'rps'),
        small(after, 'rps'),
        0,
      ],
      [`${SMALL_COUNT} x 100 KB, ${WRK_CLIENTS} clients, warm: MB/s`, small(before, 'mbps'), small(after, 'mbps'), 1],
      [`${SMALL_COUNT} x 100 KB: server CPU µs/request`, small(before, 'cpu'), small(after, 'cpu'), 0],
      [`${SMALL_COUNT} x 100 KB: p99 latency ms`, small(before, 'p99'), small(after, 'p99'), 2],
    ];
    print(
      `Two \`accel mirror serve\` processes (Node ${process.versions.node}) over nginx ${nginxVersion()} on 127.0.0.1, one with ` +
        '`store.verifyHits: "changed"` (a whole blob is hashed again only when its file changed since this process hashed it: ' +
        'what the mirror did before), one with the default `"always"`; ' +
        `${sh('nproc').trim()} cores shared with the load generator. Large: \`curl\`, median of ${LARGE_RUNS} runs each, in turns; ` +
        `small: \`wrk -t${WRK_THREADS} -c${WRK_CLIENTS} -d${WRK_SECONDS}s\` after a 1 s warm-up, ${VERIFY_WRK_ROUNDS} rounds each in turns, median.\n`,
    );
    print(`| measurement | ${VERIFY_MODES[0].what} | ${VERIFY_MODES[1].what} | after ÷ before |`);
    print('| --- | ---: | ---: | ---: |');
    for (const [what, b, a, digits] of rows)
      print(`| ${what} | ${fmt(b, digits)} | ${fmt(a, digits)} | ${fmt(a / b, 2)} |`);
    print('');
  } finally {
    agent.destroy();
    for (const child of children.reverse()) await stop(child);
    rmSync(root, { recursive: true, force: true });
  }
}

function installed(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).error === undefined;
}

function nginxVersion(): string {
  return /nginx\/(\S+)/.exec(spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr)?.[1] ?? '?';
}

function writeFiles(www: string): void {
  mkdirSync(join(www, 'small'), { recursive: true });
  mkdirSync(join(www, 'cold'));
  sh(`head -c ${LARGE_SIZE} /dev/urandom > ${join(www, LARGE_NAME)}`);
  for (let i = 0; i < SMALL_COUNT; i++) writeFileSync(join(www, 'small', smallName(i)), randomBytes(SMALL_SIZE));
  for (let round = 0; round < COLD_ROUNDS; round++) {
    for (let i = 0; i < COLD_COUNT; i++) writeFileSync(join(www, 'cold', coldName(round, i)), randomBytes(SMALL_SIZE));
  }
}

async function startNginx(root: string, www: string): Promise<Server> {
  const port = await freePort();
  return runNginx(
    join(root, 'nginx'),
    port,
    `sendfile on;\n  tcp_nopush on;\n  default_type application/octet-stream;\n  access_log off;\n  server {\n    listen 127.0.0.1:${port};\n    root ${www};\n  }`,
  );
}

/**
 * nginx as both benches run it: one worker, long keep-alive, every path inside `prefix` (so it runs as root
 * without touching /var; workers as root read the 0700 temp dirs), `http` holding the rest.
 */
async function runNginx(prefix: string, port: number, http: string): Promise<Server> {
  mkdirSync(prefix, { recursive: true });
  const temp = (name: string) => `${name}_temp_path ${join(prefix, name)};`;
  const conf = `
${process.getuid?.() === 0 ? 'user root;' : ''}
daemon off;
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;
events { worker_connections 1024; }
http {
  keepalive_timeout 65;
  keepalive_requests 1000000;
  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n  ')}
  ${http}
}
`;
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(confPath, conf);
  const child = spawn('nginx', ['-p', prefix, '-c', confPath, '-e', join(prefix, 'error.log')], { stdio: 'ignore' });
  await waitUntil(child, join(prefix, 'error.log'), () => canConnect(port));
  return { url: `http://127.0.0.1:${port}`, child };
}

/**
 * A second nginx, configured only by the site `accel mirror config nginx` writes for the bench's store, with
 * the same process settings as the plain one (one worker, sendfile, no access log).
 */
async function startFront(root: string, accel: string): Promise<Server> {
  const prefix = join(root, 'front-nginx');
  mkdirSync(prefix);
  const port = await freePort();
  const site = join(prefix, 'accel.conf');
  const made = spawnSync(
    process.execPath,
    [
      MAIN,
      '--home',
      join(root, 'home'),
      'mirror',
      'config',
      'nginx',
      '--url',
      accel,
      '--listen',
      `127.0.0.1:${port}`,
      '--write',
      site,
    ],
    { encoding: 'utf8' },
  );
  if (made.status !== 0) throw new Error(`mirror config nginx: ${made.stderr}`);
  return runNginx(prefix, port, `include ${site};`);
}

function startMirror(root: string, upstream: string): Promise<Server> {
  return startAccelMirror(join(root, 'home'), join(root, 'mirror.log'), ['--allow', upstream.slice('http://'.length)]);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Downloads with curl and returns MB/s; checks status, size and the mirror's cache status. */
function curlGet(url: string, size: number, cache?: string): number {
  const format = '%{http_code} %{size_download} %{speed_download} %header{x-accel-cache}';
  const [status, bytes, speed, got = ''] = sh(`curl -sS -o /dev/null -w '${format}' '${url}'`).trim().split(' ');
  if (status !== '200' || Number(bytes) !== size || (cache !== undefined && got !== cache)) {
    throw new Error(`GET ${url}: ${status}, ${bytes} of ${size} bytes, x-accel-cache ${got} (wanted ${cache})`);
  }
  return Number(speed) / MB;
}

interface Got {
  url: string;
  status: number;
  bytes: number;
  cache: string | undefined;
}

function httpGet(url: string, agent: Agent): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      res.on('end', () => {
        const cache = res.headers['x-accel-cache'];
        resolve({ url, status: res.statusCode ?? 0, bytes, cache: cache === undefined ? undefined : String(cache) });
      });
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer for 30 s: ${url}`)));
    req.on('error', reject);
  });
}

/** A benchmark that silently measures 404s or misses is worse than none. */
function expect(got: Got, cache?: string): void {
  if (got.status !== 200 || got.bytes !== SMALL_SIZE || (cache !== undefined && got.cache !== cache)) {
    throw new Error(`GET ${got.url}: ${got.status}, ${got.bytes} bytes, x-accel-cache ${got.cache} (wanted ${cache})`);
  }
}

async function perFileMs(agent: Agent, url: (i: number) => string, cache?: string): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < COLD_COUNT; i++) expect(await httpGet(url(i), agent), cache);
  return (performance.now() - start) / COLD_COUNT;
}

interface WrkResult {
  rps: number;
  mbps: number;
  p50: number;
  p99: number;
  /** Server CPU time per request, µs. */
  cpu: number;
}

function wrkRun(script: string, server: Server, prefix: string, pids: number[]): WrkResult {
  const run = (seconds: number) =>
    sh(`wrk -t${WRK_THREADS} -c${WRK_CLIENTS} -d${seconds}s -s ${script} ${server.url}/ -- '${prefix}' ${SMALL_COUNT}`);
  run(1);
  const cpuBefore = cpuSeconds(pids);
  const out = run(WRK_SECONDS);
  const cpu = cpuSeconds(pids) - cpuBefore;
  const fields = /RESULT (.*)/.exec(out)?.[1]?.split(' ').map(Number);
  if (fields?.length !== 7) throw new Error(`wrk printed no result:\n${out}`);
  const [requests = 0, bytes = 0, micros = 1, socketErrors, statusErrors, p50 = 0, p99 = 0] = fields;
  if (requests === 0 || socketErrors !== 0 || statusErrors !== 0) {
    throw new Error(`wrk against ${server.url}${prefix}: ${socketErrors} socket errors, ${statusErrors} bad statuses`);
  }
  const seconds = micros / 1e6;
  return {
    rps: requests / seconds,
    mbps: bytes / MB / seconds,
    p50: p50 / 1000,
    p99: p99 / 1000,
    cpu: (cpu * 1e6) / requests,
  };
}

/** The nginx master and its workers. */
function nginxPids(master: ChildProcess): number[] {
  const pid = master.pid as number;
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  return [pid, ...children.map(Number)];
}

/** User + system CPU seconds of the processes, from /proc. */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}

function repeat(n: number, fn: () => number): number[] {
  return Array.from({ length: n }, fn);
}
