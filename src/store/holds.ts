import type { StoreContext } from './context.ts';
import { writeTx } from './db.ts';
import type { Digest } from './digest.ts';

/**
 * Holds: blobs an owner needs, which gc never evicts while the hold lasts. An owner is a name: durable ones
 * (`apt-epoch/<remap>/<suite>/<id>`) last until released; a process's own (`processOwner`) end with the process,
 * since gc drops the holds of processes that are gone.
 */
export function setHold(ctx: StoreContext, owner: string, digests: Iterable<Digest>): void {
  const { db } = ctx;
  const wanted = new Set<string>(digests);
  // Only the difference is written: a syncer's tree of 50,000 headers changes by one blob per edit.
  const had = new Set(db.prepare('SELECT digest FROM holds WHERE owner = ?').pluck().all(owner) as string[]);
  const drop = db.prepare('DELETE FROM holds WHERE owner = ? AND digest = ?');
  const add = db.prepare('INSERT OR IGNORE INTO holds (owner, digest) VALUES (?, ?)');
  writeTx(db, () => {
    for (const digest of had) if (!wanted.has(digest)) drop.run(owner, digest);
    for (const digest of wanted) if (!had.has(digest)) add.run(owner, digest);
  });
}

export function releaseHold(ctx: StoreContext, owner: string): void {
  ctx.db.prepare('DELETE FROM holds WHERE owner = ?').run(owner);
}

const PROCESS_OWNER = /^proc:(\d+):/;

/** An owner name whose holds end with this process (`proc:<pid>:<name>`). */
export function processOwner(name: string, pid = process.pid): string {
  return `proc:${pid}:${name}`;
}

/** Drops the holds of processes that no longer run (killed before they released them). */
export function dropDeadHolds(ctx: StoreContext): number {
  const owners = ctx.db.prepare("SELECT DISTINCT owner FROM holds WHERE owner LIKE 'proc:%'").pluck().all() as string[];
  let dropped = 0;
  for (const owner of owners) {
    const pid = Number(PROCESS_OWNER.exec(owner)?.[1]);
    if (Number.isInteger(pid) && !alive(pid)) {
      releaseHold(ctx, owner);
      dropped++;
    }
  }
  return dropped;
}

/** Bytes of the blobs held and not pinned: what gc may not evict besides pinned blobs. */
export function heldBytes(ctx: StoreContext): number {
  return ctx.db
    .prepare(
      `SELECT coalesce(sum(size), 0) FROM blobs WHERE pinned = 0
       AND digest IN (SELECT DISTINCT digest FROM holds)`,
    )
    .pluck()
    .get() as number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
