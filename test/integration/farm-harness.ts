import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { TestContext } from 'node:test';
import { MtlsClient } from '../../src/net/client.ts';
import { initCa, installBundle, issueCert, type Role, writeBundle } from '../../src/net/tls.ts';
import { loadIdentity } from '../../src/net/tls-identity.ts';
import { cleanEnv, MAIN, ROOT, runAccel } from '../helpers.ts';

export const EXAMPLE = join(ROOT, 'examples', 'c-project');

/** A CA home, and one installed certificate per named machine (each its own ACCEL_HOME). */
export async function farmCerts(dir: string, machines: Record<string, Role>): Promise<Record<string, string>> {
  const ca = join(dir, 'ca');
  await initCa(ca);
  const homes: Record<string, string> = {};
  for (const [name, role] of Object.entries(machines)) {
    await issueCert(ca, { name, role });
    const bundle = join(dir, `${name}.json`);
    await writeBundle(ca, name, bundle);
    homes[name] = join(dir, 'homes', name);
    await installBundle(homes[name], bundle);
  }
  return homes;
}

export interface Proc {
  child: ChildProcess;
  stderr: () => string;
  /** The https URL the process announced. */
  url: string;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

/** Starts `accel ARGS` and waits until it logs a line matching `ready` (its first group is the URL). */
export function startAccel(t: TestContext, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...cleanEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  t.after(() => stop('SIGKILL'));
  return new Promise((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = ready.exec(err);
      if (m) resolve({ child, stderr: () => err, url: m[1] ?? '', stop });
    });
    child.once('exit', (code) => reject(new Error(`accel ${args.join(' ')} exited ${code}:\n${err}`)));
  });
}

export function startSyncer(t: TestContext, home: string, dirs: string[], env: NodeJS.ProcessEnv = {}, port = 0) {
  const args = [
    '--home',
    home,
    'syncer',
    '--port',
    String(port),
    '--reapi-port',
    '0',
    ...dirs.flatMap((d) => ['--dir', d]),
  ];
  return startAccel(t, args, /syncer listening on (https:\/\/[^/\s]+)\//, env);
}

export function startWorker(t: TestContext, home: string, syncer: string, cores: number, env: NodeJS.ProcessEnv = {}) {
  const args = ['--home', home, 'worker', '--cores', String(cores), '--syncer', syncer, '--status-port', '0'];
  return startAccel(t, args, /status on (https:\/\/\S+)\/status/, env);
}

/** A copy of the example project (without build outputs) under `dir`. */
export function copyProject(dir: string): string {
  const src = join(dir, 'src');
  mkdirSync(src, { recursive: true });
  cpSync(EXAMPLE, src, { recursive: true, filter: (p) => !relative(EXAMPLE, p).startsWith('build') });
  return src;
}

/** Every file ending in `ext` under `dir`, by relative path: a build's objects (or dependency files). */
export function objects(dir: string, ext = '.o'): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith(ext))
      out.set(relative(dir, join(e.parentPath, e.name)), readFileSync(join(e.parentPath, e.name)));
  }
  return out;
}

/** The port a syncer announced for its Remote Execution API (logged just after its HTTPS URL). */
export async function reapiPort(syncer: Proc): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const m = /REAPI \(gRPC\) listening on grpcs:\/\/\S+:(\d+)/.exec(syncer.stderr());
    if (m) return Number(m[1]);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the syncer announced no REAPI port:\n${syncer.stderr()}`);
}

export function accelCc(home: string, compiler: string): string {
  return `${process.execPath} ${MAIN} --home ${home} cc -- ${compiler}`;
}

export async function ccStats(home: string): Promise<Record<string, number>> {
  const r = await runAccel(['--home', home, '--json', 'cc', '--stats']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.toString()).counters;
}

export async function farmStatus(home: string, syncer: string) {
  const r = await runAccel(['--home', home, '--json', 'farm', 'status', '--syncer', syncer]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.toString());
}

/** A bin dir whose gcc and g++ wait `seconds` before compiling: a slow or hanging worker, same toolchain. */
export function slowCompilers(dir: string, seconds: number): string {
  const bin = join(dir, `slow-${seconds}`);
  mkdirSync(bin, { recursive: true });
  for (const name of ['gcc', 'g++']) {
    writeFileSync(
      join(bin, name),
      `#!/bin/sh\ncase " $* " in *" -c "*) sleep ${seconds};; esac\nexec /usr/bin/${name} "$@"\n`,
      { mode: 0o755 },
    );
  }
  return bin;
}

/** GETs a JSON document with this home's certificate from a server of the given role. */
export async function getJson(home: string, url: string, role: Role = 'worker'): Promise<Record<string, unknown>> {
  const client = new MtlsClient(url, loadIdentity(home), { role });
  try {
    const res = await client.request('GET', new URL(url).pathname, undefined, { timeoutMs: 5000 });
    assert.equal(res.status, 200);
    return JSON.parse(res.body.toString());
  } finally {
    client.close();
  }
}

export function objectFiles(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith('.o'))
      out.set(relative(dir, join(e.parentPath, e.name)), readFileSync(join(e.parentPath, e.name)));
  }
  return out;
}
