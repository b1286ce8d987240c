import { createHash } from 'node:crypto';

/**
 * Weighted rendezvous (highest random weight) hashing, as ccache's sharded remote storage does: every shard
 * scores the key, the highest score owns it. A shard added or removed moves only the keys it wins or won, and a
 * shard of weight 2 owns about twice the keys of one of weight 1. Scores are -weight / ln(h) with h uniform in
 * (0, 1) from SHA-256 of the shard's id and the key, so every client picks the same shard.
 */
export function rendezvousOwner<T extends { id: string; weight: number }>(key: string, shards: readonly T[]): T {
  let best: T | undefined;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (const shard of shards) {
    const score = -shard.weight / Math.log(unitHash(`${shard.id}\0${key}`));
    if (score > bestScore) {
      best = shard;
      bestScore = score;
    }
  }
  if (!best) throw new Error('rendezvousOwner: no shards');
  return best;
}

/** 53 bits of SHA-256 as a number in (0, 1): never 0 (log would be -∞) nor 1 (log 0). */
function unitHash(text: string): number {
  const digest = createHash('sha256').update(text).digest();
  const bits = digest.readUIntBE(0, 6) * 2 ** 5 + (digest[6] as number) / 8;
  return (Math.floor(bits) + 0.5) / 2 ** 53;
}
