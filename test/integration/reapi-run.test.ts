// The syncer's REAPI with `--reapi-run any` and a real sandboxed worker, through a real gRPC client: any
// command runs, output directories come back as Tree messages, symlinks in input and output trees follow
// REAPI v2, and the attacks (links out of the root, LD_PRELOAD aimed at the sandbox's own tools, outputs
// outside the root) are refused or contained. Under the default `compilers` the same command is refused
// with PERMISSION_DENIED naming its first word, in ASCII. ByteStream reads are streamed in bounded chunks.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { type Digest, type Directory, msg, services } from '../../src/reapi/proto.ts';
import { needsTools, tempDir } from '../helpers.ts';
import { farmCerts, reapiPort, startAccel, startSyncer, startWorker } from './farm-harness.ts';
import {
  type ActionSpec,
  byteStreamRead,
  digestOf,
  execute,
  putAction,
  putBlobs,
  readBlob,
  reapiClient,
  type TreeSpec,
  unary,
} from './reapi-client.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];

/** A Tree blob as path → entry: `file:DIGEST[:x]`, `dir`, or `-> TARGET`. */
async function treeEntries(c: grpc.Client, digest: Digest): Promise<Record<string, string>> {
  const tree = msg.Tree.decode(await readBlob(c, digest));
  const byDigest = new Map(tree.children.map((d) => [digestOf(msg.Directory.encode(d)).hash, d]));
  const out: Record<string, string> = {};
  const walk = (dir: Directory, prefix: string) => {
    for (const f of dir.files) out[prefix + f.name] = `file:${f.digest?.hash}${f.is_executable ? ':x' : ''}`;
    for (const s of dir.symlinks) out[prefix + s.name] = `-> ${s.target}`;
    for (const d of dir.directories) {
      out[prefix + d.name] = 'dir';
      const child = byDigest.get(d.digest?.hash ?? '');
      assert.ok(child, `the tree holds ${prefix}${d.name}`);
      walk(child, `${prefix}${d.name}/`);
    }
  };
  walk(tree.root as Directory, '');
  return out;
}

test('reapi-run any: commands run in the sandbox; output directories as Trees, symlinks per REAPI v2; escapes refused; compilers refuses naming the word', {
  ...needsTools('bwrap', 'gcc'),
  timeout: 180_000,
}, async (t) => {
  const dir = tempDir(t, 'accel-reapi-run-');
  const homes = await farmCerts(dir, {
    syncer: 'syncer',
    s2: 'syncer',
    s3: 'syncer',
    w1: 'worker',
    w2: 'worker',
    dev: 'client',
  });
  const syncer = await startSyncer(t, homes.syncer as string, [], { ACCEL_FARM_REAPI_RUN: 'any' });
  const c = reapiClient(t, await reapiPort(syncer), homes.dev as string);
  await startWorker(t, homes.w1 as string, syncer.url, 2);

  await t.test('a command writes a file, a directory tree with an empty dir, an executable and a link', async () => {
    const action = await putAction(c, {
      args: sh(
        'mkdir -p out/tree/sub out/tree/empty && cat in/data.txt in/alias > out/tree/sub/a.txt && ' +
          'printf "#!/bin/sh\\n" > out/tree/run.sh && chmod +x out/tree/run.sh && ln -s sub/a.txt out/tree/link && ' +
          'id -u > out/uid && echo "$GREETING" > out/env',
      ),
      tree: { in: { 'data.txt': Buffer.from('data\n'), alias: { symlink: 'data.txt' } } },
      env: { GREETING: 'hello', PATH: '/usr/bin:/bin' },
      outputFiles: ['out/uid', 'out/env'],
      outputDirs: ['out/tree'],
    });
    const { result } = await execute(c, action);
    assert.equal(result?.exit_code, 0, result?.stderr_raw?.toString());
    const files = Object.fromEntries(result?.output_files.map((f) => [f.path, f]) ?? []);
    assert.equal((await readBlob(c, files['out/env']?.digest as Digest)).toString(), 'hello\n');
    const uid = (await readBlob(c, files['out/uid']?.digest as Digest)).toString().trim();
    assert.notEqual(uid, '0', 'the command does not run as root');
    assert.equal(result?.output_directories?.length, 1);
    assert.equal(result?.output_directories?.[0]?.path, 'out/tree');
    const entries = await treeEntries(c, result?.output_directories?.[0]?.tree_digest as Digest);
    assert.deepEqual(entries, {
      'run.sh': `file:${digestOf(Buffer.from('#!/bin/sh\n')).hash}:x`,
      link: '-> sub/a.txt',
      empty: 'dir',
      sub: 'dir',
      'sub/a.txt': `file:${digestOf(Buffer.from('data\ndata\n')).hash}`,
    });
    // A clean second run is a cache hit whose tree's files are all still there.
    const again = await execute(c, action);
    assert.equal(again.cached_result, true);
  });

  await t.test('Capabilities: absolute symlink targets disallowed, API 2.0 to 2.1', async () => {
    const caps = await unary<{
      cache_capabilities: { symlink_absolute_path_strategy: number };
      low_api_version: { major: number; minor: number };
      high_api_version: { major: number; minor: number };
    }>(c, services.Capabilities.GetCapabilities, {});
    assert.equal(caps.cache_capabilities.symlink_absolute_path_strategy, 1, 'DISALLOWED');
    assert.deepEqual(caps.low_api_version, { major: 2, minor: 0, patch: 0, prerelease: '' });
    assert.deepEqual(caps.high_api_version, { major: 2, minor: 1, patch: 0, prerelease: '' });
  });

  await t.test('output_paths (v2.1): a file, a directory and a symlink, each reported by what it is', async () => {
    const action = await putAction(c, {
      args: sh('mkdir d && echo x > d/x && echo f > f && ln -s f l'),
      tree: { keep: Buffer.from('') },
      outputPaths: ['f', 'd', 'l'],
    });
    const { result } = await execute(c, action);
    assert.equal(result?.exit_code, 0, result?.stderr_raw?.toString());
    assert.deepEqual(
      result?.output_files.map((f) => f.path),
      ['f'],
    );
    assert.deepEqual(
      result?.output_directories?.map((d) => d.path),
      ['d'],
    );
    assert.deepEqual(result?.output_symlinks, [{ path: 'l', target: 'f' }]);
    assert.deepEqual(result?.output_file_symlinks, [{ path: 'l', target: 'f' }]);
  });

  await t.test('an executable input runs; a test-like action that fails still returns its outputs', async () => {
    const action = await putAction(c, {
      args: ['./tool.sh'],
      tree: { 'tool.sh': { data: Buffer.from('#!/bin/sh\necho ran > log.txt\nexit 3\n'), executable: true } },
      outputFiles: ['log.txt'],
    });
    const { result } = await execute(c, action);
    assert.equal(result?.exit_code, 3);
    assert.equal((await readBlob(c, result?.output_files[0]?.digest as Digest)).toString(), 'ran\n');
    assert.equal((await execute(c, action)).cached_result, false, 'a failed action is not cached');
  });

  await t.test('attack: input symlinks out of the root, directly or through another link, are refused', async () => {
    const trees: TreeSpec[] = [
      { passwd: { symlink: '/etc/passwd' } },
      { up: { symlink: '../../etc/passwd' } },
      { a: { symlink: '.' }, b: { symlink: 'a/..' }, c: { symlink: 'b/../etc/passwd' } },
    ];
    for (const tree of trees) {
      const action = await putAction(c, { args: sh('cat passwd up c > out || true'), tree, outputFiles: ['out'] });
      await assert.rejects(execute(c, action), (e: grpc.ServiceError) => {
        assert.equal(e.code, 3, e.message); // INVALID_ARGUMENT
        assert.match(e.details, /symlink .* (absolute targets are not allowed|leaves the action's input root)/);
        return true;
      });
    }
  });

  await t.test(
    'attack: output symlinks to host files are refused, never read; outputs outside the root too',
    async () => {
      const marker = join(dir, 'host-secret');
      spawnSync('sh', ['-c', `echo secret > ${marker}`]);
      const cases: [string, Partial<ActionSpec>][] = [
        [`ln -s ${marker} out`, { outputFiles: ['out'] }],
        ['mkdir d && ln -s ../../../../etc/passwd d/p', { outputDirs: ['d'] }],
      ];
      for (const [script, outputs] of cases) {
        const action = await putAction(c, { args: sh(script), tree: { k: Buffer.from('') }, ...outputs });
        await assert.rejects(execute(c, action), (e: grpc.ServiceError) => {
          assert.equal(e.code, 9, e.message); // FAILED_PRECONDITION
          assert.match(e.details, /output symlink/);
          return true;
        });
      }
      const outside = await putAction(c, { args: sh('true'), tree: { k: Buffer.from('') }, outputFiles: ['../../x'] });
      await assert.rejects(
        execute(c, outside),
        (e: grpc.ServiceError) => e.code === 3 && /not a relative path/.test(e.details),
      );
    },
  );

  await t.test('attack: LD_PRELOAD reaches only the command, never the sandbox tools that run as root', async () => {
    const src = join(dir, 'evil.c');
    const so = join(dir, 'evil.so');
    const pwned = join(dir, 'pwned');
    // Outside the sandbox (prlimit, bwrap, setpriv as the worker) the constructor would write the host marker.
    spawnSync('sh', [
      '-c',
      `cat > ${src} <<'EOF'
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
  FILE *f = fopen("${pwned}", "w"); if (f) { fputs("pwned", f); fclose(f); }
  f = fopen("preloaded", "a"); if (f) { fprintf(f, "%d\\n", (int)getuid()); fclose(f); }
}
EOF
gcc -shared -fPIC -o ${so} ${src}`,
    ]);
    const action = await putAction(c, {
      args: sh('true'),
      tree: { 'evil.so': readFileSync(so) },
      env: { LD_PRELOAD: './evil.so' },
      outputFiles: ['preloaded'],
    });
    const { result } = await execute(c, action);
    assert.equal(result?.exit_code, 0, result?.stderr_raw?.toString());
    const uids = (await readBlob(c, result?.output_files[0]?.digest as Digest)).toString().trim().split('\n');
    assert.ok(uids.length >= 1 && uids.every((u) => u !== '0'), `only the unprivileged command loaded it: ${uids}`);
    assert.equal(existsSync(pwned), false, 'nothing outside the sandbox loaded the library');
  });

  await t.test('ByteStream: a 3 MiB blob is read in chunks of at most 64 KiB, whole and by range', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 12)) & 0xff;
    const digest = (await putBlobs(c, [big]))[0] as Digest;
    const whole = await byteStreamRead(c, digest);
    assert.ok(whole.length > 40 && whole.every((ch) => ch.length <= 64 * 1024), 'many bounded chunks');
    assert.deepEqual(Buffer.concat(whole), big);
    const range = await byteStreamRead(c, digest, { offset: 65_530, limit: 200_000 });
    assert.deepEqual(Buffer.concat(range), big.subarray(65_530, 265_530));
    const tail = await byteStreamRead(c, digest, { offset: big.length - 5 });
    assert.deepEqual(Buffer.concat(tail), big.subarray(big.length - 5));
    await assert.rejects(
      byteStreamRead(c, digest, { offset: big.length + 1 }),
      (e: grpc.ServiceError) => e.code === 11,
    );
  });

  await t.test(
    'compilers (the default): the command is refused, PERMISSION_DENIED naming its first word, ASCII',
    async () => {
      const strict = await startSyncer(t, homes.s2 as string, []);
      const c2 = reapiClient(t, await reapiPort(strict), homes.dev as string);
      const action = await putAction(c2, {
        args: ['external/bazel_tools/tools/test/test-setup.sh', 'pkg/some_test'],
        tree: { k: Buffer.from('') },
        outputFiles: ['out'],
      });
      await assert.rejects(execute(c2, action), (e: grpc.ServiceError) => {
        assert.equal(e.code, 7, e.message); // PERMISSION_DENIED
        assert.match(e.details, /ACCEL_REAPI_COMMAND_REFUSED: 'external\/bazel_tools\/tools\/test\/test-setup\.sh'/);
        assert.match(e.details, /farm\.reapiRun/);
        assert.match(e.details, /^[\x20-\x7e]*$/, 'the status message is ASCII');
        return true;
      });
      // An argument the allowlist refuses: its message (which has typographic quotes) arrives as ASCII.
      const flag = await putAction(c2, {
        args: ['gcc', '-fplugin=x.so', '-c', 'a.c'],
        tree: { 'a.c': Buffer.from('') },
      });
      await assert.rejects(execute(c2, flag), (e: grpc.ServiceError) => {
        assert.equal(e.code, 7, e.message);
        assert.match(e.details, /-fplugin=x\.so/);
        assert.match(e.details, /^[\x20-\x7e]*$/, `ASCII: ${e.details}`);
        return true;
      });
    },
  );
  await t.test('attack: an unsandboxed worker never runs a command, even from a syncer that allows any', async () => {
    const open = await startSyncer(t, homes.s3 as string, [], { ACCEL_FARM_REAPI_RUN: 'any' });
    const c3 = reapiClient(t, await reapiPort(open), homes.dev as string);
    const args = ['--home', homes.w2 as string, 'worker', '--cores', '1', '--syncer', open.url, '--status-port', '0'];
    await startAccel(t, [...args, '--unsandboxed'], /status on (https:\/\/\S+)\/status/);
    const action = await putAction(c3, { args: sh('id -u > out'), tree: { k: Buffer.from('') }, outputFiles: ['out'] });
    await assert.rejects(execute(c3, action), (e: grpc.ServiceError) => {
      assert.equal(e.code, 7, e.message); // PERMISSION_DENIED: Bazel's --remote_local_fallback runs it locally
      assert.match(e.details, /ACCEL_FARM_COMMAND_UNSANDBOXED/);
      assert.match(e.details, /^[\x20-\x7e]*$/, `ASCII: ${e.details}`);
      return true;
    });
  });
});
