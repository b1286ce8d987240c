import type { AsyncSubscription, Event } from '@parcel/watcher';
import { createWrapper } from '@parcel/watcher/wrapper.js';
import { watcherBinding } from './native.ts';

export type WatchEvent = Event;

/**
 * Subscribes to changes under `dir` with @parcel/watcher (inotify on Linux). The binding comes from the
 * single executable's embedded assets, or from the platform package when running from source.
 */
export function watchDirectory(
  dir: string,
  home: string,
  onEvents: (events: WatchEvent[]) => void,
  onError: (err: Error) => void,
): Promise<AsyncSubscription> {
  const watcher = createWrapper(watcherBinding(home));
  return watcher.subscribe(dir, (err, events) => {
    if (err) onError(err);
    else onEvents(events);
  });
}
