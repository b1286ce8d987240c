import { type ChildProcess, spawn } from 'node:child_process';
import type { TestContext } from 'node:test';
import { silentLog } from '../src/core/log.ts';
import { createMirrorServer, type MirrorOptions } from '../src/mirror/server.ts';
import { Store } from '../src/store/store.ts';
import { cleanEnv, MAIN, tempDir } from './helpers.ts';

/** The build-cache write token of test mirrors (a real one makes its own, see src/mirror/cache-token.ts). */
export const TEST_CACHE_TOKEN = 'test-cache-token';
export const CACHE_AUTH = { authorization: `Bearer ${TEST_CACHE_TOKEN}` };

/** An in-process mirror on port 0 over a temp (or given) store, closed when the test ends or on `close()`. */
export async function startTestMirror(t: TestContext, options: Partial<MirrorOptions> & { home?: string } = {}) {
  const store = Store.open({ home: options.home ?? tempDir(t) });
  const server = createMirrorServer({
    store,
    log: silentLog,
    port: 0,
    bind: '127.0.0.1',
    offline: false,
    token: '',
    cacheToken: TEST_CACHE_TOKEN,
    ttlSeconds: 3600,
    stallSeconds: 10,
    remaps: {},
    immutable: [],
    allow: [],
    ...options,
  });
  const { port } = await server.listen();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await server.close();
    store.close();
  };
  t.after(close);
  return { port, base: `http://127.0.0.1:${port}`, store, server, close };
}

/** `accel mirror serve --port 0` as a child process; resolves once it listens. SIGTERM at the end of the test. */
export async function serveCli(t: TestContext, home: string, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const child: ChildProcess = spawn(
    process.execPath,
    [MAIN, '--home', home, 'mirror', 'serve', '--port', '0', ...args],
    {
      env: { ...cleanEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  t.after(async () => {
    child.kill('SIGTERM');
    await exited;
  });
  let stderr = '';
  const base = await new Promise<string>((resolve, reject) => {
    child.stderr?.on('data', (d) => {
      stderr += d;
      const m = /listening on (http:\/\/[^/]+)\//.exec(stderr);
      if (m?.[1]) resolve(m[1]);
    });
    child.on('close', () => reject(new Error(`mirror exited: ${stderr}`)));
  });
  return { base, child, exited, stderr: () => stderr };
}
