import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { replaceFileSync } from '../core/atomic-fs.ts';
import { makeDirs } from '../core/dirs.ts';
import { errnoCode } from '../core/errors.ts';
import { homeLayout } from '../core/home-layout.ts';

/**
 * What a client knows about reaching its syncer, so that a build with the syncer down pays for one time-out, not
 * one per compile (a 22-file `make -j4` took 65 s instead of 1 s). Kept in memory for a long-lived process (the
 * compile-cache daemon) and in `$ACCEL_HOME/run/farm-down.json` for the one-shot `accel cc --` processes of the
 * same build.
 *
 * - Reached within the last minute: compiles go to the farm without asking first.
 * - Found unreachable: for the back-off (30 s, doubling up to 5 min; a success forgets it) compiles run locally at
 *   once, without asking.
 * - Otherwise (never asked, or the back-off is over): one probe at a time per home, whichever processes compile;
 *   the other compiles wait for its answer, so a syncer that never answers is asked once, not once per compile.
 */
interface SyncerHealth {
  syncer: string;
  /** When (ms since the epoch) it last answered. */
  okAt?: number;
  /** Until when it is not asked. */
  until?: number;
  backoffMs?: number;
}

const TRUST_MS = 60_000;
/** A success is written to the state file at most this often (every compile reaches here). */
const OK_WRITE_MS = 10_000;
const FIRST_BACKOFF_MS = 30_000;
const MAX_BACKOFF_MS = 5 * 60_000;
/** How often a compile waiting for another process's probe looks at the state file. */
const POLL_MS = 50;

const known = new Map<string, SyncerHealth>();
const probes = new Map<string, Promise<boolean>>();

function stateFile(home: string): string {
  return homeLayout(home).run.farmDown;
}

function probeLock(home: string): string {
  return homeLayout(home).run.farmProbeLock;
}

function readFile(home: string, syncer: string): SyncerHealth | undefined {
  try {
    const state = JSON.parse(readFileSync(stateFile(home), 'utf8')) as SyncerHealth;
    return state.syncer === syncer ? state : undefined;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

function read(home: string, syncer: string): SyncerHealth | undefined {
  return known.get(`${home}\0${syncer}`) ?? readFile(home, syncer);
}

/** Written by rename: a reader sees the old state or the new one, never a partial one or none. */
function write(home: string, state: SyncerHealth): void {
  known.set(`${home}\0${state.syncer}`, state);
  const file = stateFile(home);
  makeDirs(dirname(file), { mode: 0o700 });
  replaceFileSync(file, `${JSON.stringify(state)}\n`, { mode: 0o600, umask: true, unlinkFirst: false });
}

function verdict(state: SyncerHealth | undefined, now: number): 'up' | 'down' | undefined {
  if (state?.until !== undefined && now < state.until) return 'down';
  if (state?.okAt !== undefined && now - state.okAt < TRUST_MS) return 'up';
  return undefined;
}

/** True while `syncer` is remembered as down: the caller compiles locally without asking it. */
export function syncerMarkedDown(home: string, syncer: string, now = Date.now()): boolean {
  return verdict(read(home, syncer), now) === 'down';
}

export function markSyncerDown(home: string, syncer: string, now = Date.now()): SyncerHealth {
  const previous = read(home, syncer);
  const backoffMs = previous?.backoffMs ? Math.min(previous.backoffMs * 2, MAX_BACKOFF_MS) : FIRST_BACKOFF_MS;
  const state: SyncerHealth = { syncer, until: now + backoffMs, backoffMs };
  write(home, state);
  return state;
}

export function markSyncerUp(home: string, syncer: string, now = Date.now()): void {
  const previous = read(home, syncer);
  const fresh = previous?.until === undefined && previous?.okAt !== undefined && now - previous.okAt < OK_WRITE_MS;
  if (fresh) return;
  write(home, { syncer, okAt: now });
}

/**
 * Whether to send a compile to `syncer`: `down` (remembered, or `probe` just failed) means compile locally now.
 * `probed` says that this call asked the syncer itself. `probe` resolves true when the syncer answered at all.
 */
export async function checkSyncer(
  home: string,
  syncer: string,
  probe: () => Promise<boolean>,
  probeMs: number,
): Promise<{ up: boolean; probed: boolean }> {
  const now = Date.now();
  const state = verdict(read(home, syncer), now);
  if (state) return { up: state === 'up', probed: false };
  const key = `${home}\0${syncer}`;
  const pending = probes.get(key);
  if (pending) return { up: await pending, probed: false };
  const mine = probeOnce(home, syncer, probe, probeMs).finally(() => probes.delete(key));
  probes.set(
    key,
    mine.then((r) => r.up),
  );
  return mine;
}

/** One probe per home across processes: the holder of run/farm-probe.lock asks, the others watch the state file. */
async function probeOnce(
  home: string,
  syncer: string,
  probe: () => Promise<boolean>,
  probeMs: number,
): Promise<{ up: boolean; probed: boolean }> {
  const lock = probeLock(home);
  makeDirs(dirname(lock), { mode: 0o700 });
  for (;;) {
    try {
      writeFileSync(lock, `${JSON.stringify({ pid: process.pid, until: Date.now() + probeMs + 5000 })}\n`, {
        flag: 'wx',
        mode: 0o600,
      });
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      const outcome = await watchProbe(home, syncer, lock);
      if (outcome) return { up: outcome === 'up', probed: false };
      continue;
    }
    try {
      // Another process may have probed and let go of the lock between our look at the state and taking it.
      const known = verdict(readFile(home, syncer), Date.now());
      if (known) return { up: known === 'up', probed: false };
      const up = await probe();
      if (up) markSyncerUp(home, syncer);
      else markSyncerDown(home, syncer);
      return { up, probed: true };
    } finally {
      rmSync(lock, { force: true });
    }
  }
}

/**
 * Waits while another process probes: its outcome, or undefined when the lock went away without one (or its
 * prober died: a lock past its deadline is removed; at worst two processes then probe at once).
 */
async function watchProbe(home: string, syncer: string, lock: string): Promise<'up' | 'down' | undefined> {
  for (;;) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    const outcome = verdict(readFile(home, syncer), Date.now());
    if (outcome) return outcome;
    let until: number;
    try {
      until = (JSON.parse(readFileSync(lock, 'utf8')) as { until: number }).until;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      if (err instanceof SyntaxError) continue; // being written
      throw err;
    }
    if (Date.now() > until) {
      rmSync(lock, { force: true });
      return undefined;
    }
  }
}
