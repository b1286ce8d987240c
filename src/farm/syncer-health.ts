import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { replaceFileSync } from '../core/atomic-fs.ts';
import { errnoCode } from '../core/errors.ts';

/**
 * Remembers a syncer that could not be reached, so that a build with the syncer down pays for one time-out,
 * not one per compile (a 22-file `make -j4` took 65 s instead of 1 s). In memory for a long-lived process (the
 * compile-cache daemon), and in `$ACCEL_HOME/run/farm-down.json` for the one-shot `accel cc --` processes of the
 * same build. While the syncer is marked down, compiles run locally at once; after the back-off one compile
 * tries again. The back-off starts at 30 s and doubles up to 5 min; a success forgets it all.
 */
export interface DownMark {
  syncer: string;
  /** Until when (ms since the epoch) the syncer is not asked. */
  until: number;
  backoffMs: number;
}

const FIRST_BACKOFF_MS = 30_000;
const MAX_BACKOFF_MS = 5 * 60_000;

const marks = new Map<string, DownMark>();

function stateFile(home: string): string {
  return join(home, 'run', 'farm-down.json');
}

function readMark(home: string, syncer: string): DownMark | undefined {
  const key = `${home}\0${syncer}`;
  const known = marks.get(key);
  if (known) return known;
  try {
    const mark = JSON.parse(readFileSync(stateFile(home), 'utf8')) as DownMark;
    return mark.syncer === syncer && typeof mark.until === 'number' ? mark : undefined;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** True while `syncer` is remembered as down: the caller compiles locally without asking it. */
export function syncerMarkedDown(home: string, syncer: string, now = Date.now()): boolean {
  const mark = readMark(home, syncer);
  return mark !== undefined && now < mark.until;
}

export function markSyncerDown(home: string, syncer: string, now = Date.now()): DownMark {
  const previous = readMark(home, syncer);
  const backoffMs = previous ? Math.min(previous.backoffMs * 2, MAX_BACKOFF_MS) : FIRST_BACKOFF_MS;
  const mark: DownMark = { syncer, until: now + backoffMs, backoffMs };
  marks.set(`${home}\0${syncer}`, mark);
  mkdirSync(join(home, 'run'), { recursive: true, mode: 0o700 });
  replaceFileSync(stateFile(home), `${JSON.stringify(mark)}\n`, 0o600);
  return mark;
}

export function markSyncerUp(home: string, syncer: string): void {
  const had = marks.delete(`${home}\0${syncer}`);
  if (had || readMark(home, syncer)) replaceFileSync(stateFile(home), '{}\n', 0o600);
}
