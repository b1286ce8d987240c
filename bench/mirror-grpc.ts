// FetchBlob on the mirror's gRPC port against a GET of the same file through its HTTP port: cold (fetched
// from a local upstream) and warm (a FetchBlob answered from the store, then the blob read from the CAS, as
// Bazel's remote downloader does), per request, one client at a time. Then Debian's Bazel 4 building a
// workspace of 20 http_archive deps through the mirror, and again offline from a clean output base.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { silentLog } from '../src/core/log.ts';
import { bazelGrpcLines } from '../src/mirror/bazel-grpc-config.ts';
import { createMirrorServer } from '../src/mirror/server.ts';
import { unaryCall } from '../src/reapi/call.ts';
import { type Digest, services } from '../src/reapi/proto.ts';
import { Store } from '../src/store/store.ts';
import { type FakeUpstream, startFakeUpstream } from '../test/fake-upstream.ts';
import { runCommand } from '../test/helpers.ts';
import { fmt, has, median, run } from './util.ts';

const SIZE = 1024 * 1024;
const COLD = 20;
const WARM = 200;

export async function benchMirrorGrpc(print: (line: string) => void): Promise<void> {
  print('## Mirror over gRPC: FetchBlob (`bench/mirror-grpc.ts`, `npm run bench -- mirror-grpc`)\n');
  const home = mkdtempSync(join(tmpdir(), 'accel-bench-grpc-'));
  const up = await startFakeUpstream();
  const { store, mirror } = startMirror(home, up.origin, false);
  try {
    const { port } = await mirror.listen();
    // The HTTP/2 flow-control window of grpc-java, which Bazel uses (1 MiB); grpc-js's own default (64 KiB) would
    // measure window updates, not the mirror.
    const client = new grpc.Client(`127.0.0.1:${mirror.grpcPort()}`, grpc.credentials.createInsecure(), {
      'grpc-node.flow_control_window': 1 << 20,
    });
    for (let i = 0; i < 2 * COLD + 1; i++) up.files.set(`/f${i}.bin`, { body: randomBytes(SIZE) });
    const expected = new Map<number, string>();
    for (let i = 0; i < 2 * COLD + 1; i++) {
      expected.set(
        i,
        createHash('sha256')
          .update(up.files.get(`/f${i}.bin`)?.body ?? '')
          .digest('hex'),
      );
    }
    // Both clients check what they got against its sha256, as Bazel does with a download on either path.
    const viaHttp = async (i: number) => {
      const res = await fetch(`http://127.0.0.1:${port}/http/${up.origin}/f${i}.bin`);
      const body = Buffer.from(await res.arrayBuffer());
      if (createHash('sha256').update(body).digest('hex') !== expected.get(i)) throw new Error('wrong body');
    };
    const viaGrpc = async (i: number) => {
      const got = await unaryCall<{ blob_digest: Digest }>(client, services.Fetch.FetchBlob, {
        uris: [`http://${up.origin}/f${i}.bin`],
      });
      const read = await unaryCall<{ responses: { data: Buffer }[] }>(
        client,
        services.ContentAddressableStorage.BatchReadBlobs,
        { digests: [got.blob_digest] },
      );
      const data = read.responses[0]?.data ?? Buffer.alloc(0);
      if (createHash('sha256').update(data).digest('hex') !== got.blob_digest.hash) throw new Error('wrong blob');
    };
    const time = async (n: number, fn: (i: number) => Promise<void>, index: (i: number) => number) => {
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await fn(index(i));
        ms.push(performance.now() - t0);
      }
      return median(ms);
    };
    const coldHttp = await time(COLD, viaHttp, (i) => i);
    const coldGrpc = await time(COLD, viaGrpc, (i) => COLD + i);
    await viaHttp(2 * COLD);
    const warmHttp = await time(WARM, viaHttp, () => 2 * COLD);
    const warmGrpc = await time(WARM, viaGrpc, () => 2 * COLD);
    client.close();
    print('| 1 MiB file, one client, median ms per request | HTTP GET | FetchBlob + BatchReadBlobs | ratio |');
    print('| --- | --- | --- | --- |');
    print(
      `| cold (fetched from a loopback upstream) | ${fmt(coldHttp, 2)} | ${fmt(coldGrpc, 2)} | ${fmt(coldGrpc / coldHttp, 2)}× |`,
    );
    print(`| warm (from the store) | ${fmt(warmHttp, 2)} | ${fmt(warmGrpc, 2)} | ${fmt(warmGrpc / warmHttp, 2)}× |`);
    print(`\nGoal: warm within 1.5× of the HTTP hit: ${warmGrpc / warmHttp <= 1.5 ? 'met' : 'not met'}.\n`);
  } finally {
    await mirror.close();
    store.close();
    await up.close();
    rmSync(home, { recursive: true, force: true });
  }
  await benchBazelOffline(print);
}

const DEPS = 20;
const BAZEL_TIMEOUT_SECONDS = 600;

/** An in-process mirror with a gRPC port over the store in `home`, allowed to reach the loopback `origin`. */
function startMirror(home: string, origin: string, offline: boolean) {
  const store = Store.open({ home });
  const mirror = createMirrorServer({
    store,
    log: silentLog,
    port: 0,
    bind: '127.0.0.1',
    grpcPort: 0,
    offline,
    token: '',
    cacheToken: 'bench',
    ttlSeconds: 3600,
    stallSeconds: 10,
    remaps: {},
    immutable: [],
    allow: [origin],
  });
  return { store, mirror };
}

/** The mirror's FetchBlob and GET counters, from its status page. */
async function mirrorCounts(port: number): Promise<{ hits: number; misses: number }> {
  const status = (await (await fetch(`http://127.0.0.1:${port}/_accel/status.json`)).json()) as {
    hits: number;
    misses: number;
  };
  return { hits: status.hits, misses: status.misses };
}

/**
 * 20 tarballs on the upstream, `dep00-1.0/` …, each a C file and a BUILD file whose genrule compiles it with the
 * host's gcc, and a workspace whose genrule links all 20 objects. Genrules, not cc_library: Bazel 4's C++ rules
 * would download rules_cc from the internet. The sources carry a salt, so no earlier run's cache entries match.
 */
function bazelWorkspace(dir: string, up: FakeUpstream): string {
  const salt = randomBytes(8).toString('hex');
  const ws = join(dir, 'ws');
  mkdirSync(ws, { recursive: true });
  const names = Array.from({ length: DEPS }, (_, i) => `dep${String(i).padStart(2, '0')}`);
  const archives = names.map((name, i) => {
    const src = join(dir, 'src', `${name}-1.0`);
    mkdirSync(src, { recursive: true });
    writeFileSync(
      join(src, 'BUILD'),
      `genrule(name = "obj", srcs = ["${name}.c"], outs = ["${name}.o"], cmd = "gcc -O2 -c $< -o $@", visibility = ["//visibility:public"])\n`,
    );
    writeFileSync(join(src, `${name}.c`), `/* ${salt} */\nint ${name}(int x) { return x * ${i + 1} + ${i % 7}; }\n`);
    const tgz = join(dir, `${name}-1.0.tar.gz`);
    run('tar', ['--sort=name', '--mtime=@0', '-czf', tgz, '-C', join(dir, 'src'), `${name}-1.0`], {});
    const body = readFileSync(tgz);
    up.files.set(`/${name}-1.0.tar.gz`, { body });
    return `http_archive(
    name = "${name}",
    urls = ["http://${up.origin}/${name}-1.0.tar.gz"],
    sha256 = "${createHash('sha256').update(body).digest('hex')}",
    strip_prefix = "${name}-1.0",
)`;
  });
  writeFileSync(
    join(ws, 'WORKSPACE'),
    `load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")\n${archives.join('\n')}\n`,
  );
  writeFileSync(
    join(ws, 'BUILD'),
    `genrule(name = "app", srcs = ["main.c", ${names.map((n) => `"@${n}//:obj"`).join(', ')}], outs = ["app"], cmd = "gcc -o $@ $(SRCS)")\n`,
  );
  writeFileSync(
    join(ws, 'main.c'),
    `${names.map((n) => `int ${n}(int x);`).join('\n')}\nint main(void) {\n  int s = 0;\n${names
      .map((n) => `  s += ${n}(1);`)
      .join('\n')}\n  return s == 0;\n}\n`,
  );
  return ws;
}

/**
 * Bazel 4 with the mirror as its remote downloader and remote cache: a warm-up build (the mirror fetches the 20
 * archives), then the mirror restarted `--offline` and two builds from a clean output base, the upstream kept
 * up and counted: after `bazel clean --expunge` (Bazel's own repository cache, outside the output base, kept),
 * and with a new output user root and `--repository_cache=` (disabled), so every archive comes through FetchBlob.
 * One Bazel server per output user root, started before each timed build.
 */
async function benchBazelOffline(print: (line: string) => void): Promise<void> {
  print(`### A Bazel build of ${DEPS} \`http_archive\` deps, offline from a clean output base\n`);
  if (!has('bazel') || !has('tar')) {
    print('Skipped: no bazel or tar (`apt-get install bazel-bootstrap`).\n');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'accel-bench-grpc-bazel-'));
  const home = join(dir, 'accel');
  const userHome = join(dir, 'home');
  mkdirSync(userHome);
  const roots: string[] = [];
  const up = await startFakeUpstream();
  let current: ReturnType<typeof startMirror> | undefined;
  let ws = dir;
  // HOME is a fresh directory: no ~/.bazelrc of the user's and no repository cache shared with other runs.
  const bazel = (root: string, args: string[]) =>
    runCommand('bazel', [`--output_user_root=${root}`, ...args], {
      cwd: ws,
      env: { HOME: userHome },
      wrapper: ['timeout', String(BAZEL_TIMEOUT_SECONDS)],
    });
  try {
    ws = bazelWorkspace(dir, up);
    const build = async (label: string, root: string, offline: boolean, extra: string[] = []) => {
      if (!roots.includes(root)) roots.push(root);
      current = startMirror(home, up.origin, offline);
      const { port } = await current.mirror.listen();
      const grpcUrl = `grpc://127.0.0.1:${current.mirror.grpcPort()}`;
      const flags = bazelGrpcLines(grpcUrl, 'bench').map((l) => l.replace(/^build /, ''));
      const started = await bazel(root, ['info', 'output_base']);
      if (started.code !== 0) throw new Error(`bazel info failed:\n${started.stderr}`);
      const before = { up: up.requests.length, ...(await mirrorCounts(port)) };
      const t0 = performance.now();
      const r = await bazel(root, ['build', '//:app', ...flags, ...extra]);
      const seconds = (performance.now() - t0) / 1000;
      if (r.code !== 0) process.stderr.write(`${label}: bazel exit ${r.code}\n${r.stderr}\n`);
      const after = await mirrorCounts(port);
      await current.mirror.close();
      current.store.close();
      current = undefined;
      return {
        label,
        ok: r.code === 0,
        seconds,
        upstream: up.requests.length - before.up,
        hits: after.hits - before.hits,
        misses: after.misses - before.misses,
        says: /INFO: (\d+ processes?: .*)/.exec(r.stderr)?.[1] ?? (r.code === 0 ? '' : lastLine(r.stderr)),
      };
    };
    const rootA = join(dir, 'root-a');
    const warm = await build('warm-up: mirror online, fresh output base', rootA, false);
    if (!warm.ok) throw new Error(`the warm-up build failed: ${warm.says}`);
    // Any other download (Bazel's own rules, say) would show as a miss here: this workspace must need none.
    if (warm.misses !== DEPS) throw new Error(`the warm-up build fetched ${warm.misses} files, not ${DEPS}`);
    await bazel(rootA, ['clean', '--expunge']);
    const expunged = await build(
      'mirror `--offline`, `bazel clean --expunge` (Bazel’s repository cache kept)',
      rootA,
      true,
    );
    const fresh = await build(
      'mirror `--offline`, new output user root, `--repository_cache=` (disabled)',
      join(dir, 'root-b'),
      true,
      ['--repository_cache='],
    );
    print(
      `Debian's Bazel ${spawnSync('dpkg-query', ['-W', '-f', `$${'{Version}'}`, 'bazel-bootstrap'], { encoding: 'utf8' }).stdout || '(not from Debian)'}; a workspace whose genrule links ${DEPS} objects, each from an \`http_archive\` dep (a small .tar.gz: a C file and a BUILD file whose genrule runs \`gcc -c\`) on a loopback upstream that counts requests; the mirror in-process with \`--grpc-port\`, the flags of \`accel mirror config bazel --grpc\`; seconds are the \`bazel build\` alone (server started before).\n`,
    );
    print('| build | result | seconds | upstream requests | FetchBlob hits / misses | Bazel says |');
    print('| --- | --- | ---: | ---: | ---: | --- |');
    for (const b of [warm, expunged, fresh]) {
      print(
        `| ${b.label} | ${b.ok ? 'ok' : 'failed'} | ${fmt(b.seconds, 2)} | ${b.upstream} | ${b.hits} / ${b.misses} | ${b.says} |`,
      );
    }
    const met = expunged.ok && fresh.ok && expunged.upstream === 0 && fresh.upstream === 0 && fresh.hits === DEPS;
    print(
      `\nGoal (builds offline from a clean output base with zero upstream requests, every dep through FetchBlob): ${met ? 'met' : 'not met'}.\n`,
    );
  } finally {
    if (current) {
      await current.mirror.close();
      current.store.close();
    }
    for (const root of roots) await bazel(root, ['shutdown']);
    await up.close();
    spawnSync('chmod', ['-R', 'u+w', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.replace(/\|/g, '\\|') ?? '';
}
