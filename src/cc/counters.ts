import type { Store } from '../store/store.ts';

/** ccache-style counters, one row each, incremented in place so many wrapper processes never lose a count. */
export function bump(store: Store, name: string, by = 1): void {
  store
    .statement(
      'INSERT INTO cc_counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value',
    )
    .run(name, by);
}

export function readCounters(store: Store): Record<string, number> {
  const rows = store.db.prepare('SELECT name, value FROM cc_counters ORDER BY name').all() as {
    name: string;
    value: number;
  }[];
  return Object.fromEntries(rows.map((r) => [r.name, r.value]));
}

export function zeroCounters(store: Store): void {
  store.db.prepare('DELETE FROM cc_counters').run();
}
