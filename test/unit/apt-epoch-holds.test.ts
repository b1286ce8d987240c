import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Epoch, pinEpoch, SUPERSEDED_HOLD_MS, saveEpoch } from '../../src/mirror/apt/epochs.ts';
import type { Digest } from '../../src/store/digest.ts';
import { Store } from '../../src/store/store.ts';
import { tempDir } from '../helpers.ts';

const DAY = 24 * 3600 * 1000;

test('a suite followed for months holds its recent and pinned epochs; older superseded ones go to gc', async (t) => {
  const store = Store.open({ home: tempDir(t) });
  t.after(() => store.close());
  const start = 1_700_000_000_000;
  const epochs: Epoch[] = [];
  // Four months of a suite: a new Release every ten days.
  for (let day = 0; day <= 120; day += 10) {
    const release = await store.putBuffer(Buffer.from(`Suite: bookworm\nDate: day ${day}\n`));
    const epoch: Epoch = {
      id: `e${day}`,
      remap: 'debian',
      suite: 'bookworm',
      createdAt: start + day * DAY,
      checkedAt: start + day * DAY,
      release: { InRelease: release.digest },
      used: [],
    };
    epochs.push(epoch);
    saveEpoch(store, epoch);
  }
  // gc(0) evicts everything not pinned or held: what stays is exactly what the holds keep.
  const kept = () => {
    store.gc(0);
    return epochs.filter((e) => store.has(e.release.InRelease as Digest)).map((e) => e.id);
  };
  const now = start + 120 * DAY;
  const expected = epochs.filter((_, i) => {
    const next = epochs[i + 1];
    return !next || now - next.createdAt <= SUPERSEDED_HOLD_MS;
  });
  assert.deepEqual(
    kept(),
    expected.map((e) => e.id),
  );
  assert.ok(expected.length >= 3 && expected.length < epochs.length, `${expected.length} of ${epochs.length}`);
  // Pinning an old epoch holds it again (its Release, put back, stays through gc).
  const old = epochs[1] as Epoch;
  await store.putBuffer(Buffer.from('Suite: bookworm\nDate: day 10\n'));
  pinEpoch(store, old);
  assert.deepEqual(kept(), [old.id, ...expected.map((e) => e.id)]);
});
