import { copyFileSync, linkSync, mkdirSync, mkdtempSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { errnoCode } from '../core/errors.ts';
import { blobPath } from '../store/layout.ts';
import type { Store } from '../store/store.ts';
import type { TreeManifest } from './protocol.ts';

/** A fresh job directory under $ACCEL_HOME/sandbox/jobs; client path P lives at root + P inside it. */
export function createJobRoot(home: string): string {
  const dir = join(home, 'sandbox', 'jobs');
  mkdirSync(dir, { recursive: true });
  return mkdtempSync(join(dir, 'job-'));
}

/**
 * Lays the include tree out in the job root: each file a hard link to its read-only blob (no copy, and the
 * compiler cannot change the store through it), a copy when the store is on another file system.
 */
export function materialize(store: Store, manifest: TreeManifest, root: string): void {
  const made = new Set<string>();
  for (const [path, digest] of Object.entries(manifest.files)) {
    const target = join(root, path);
    const dir = dirname(target);
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true });
      made.add(dir);
    }
    const blob = blobPath(store.layout, digest as Parameters<typeof blobPath>[1]);
    try {
      linkSync(blob, target);
    } catch (err) {
      if (errnoCode(err) === 'EXDEV' || errnoCode(err) === 'EMLINK') copyFileSync(blob, target);
      else throw err;
    }
  }
}

/** The paths a Makefile-style dependency file names (targets excluded). */
export function depFilePaths(text: string): string[] {
  const paths: string[] = [];
  const joined = text.replace(/\\\r?\n/g, ' ');
  for (const line of joined.split('\n')) {
    const colon = line.search(/:(\s|$)/);
    if (colon < 0) continue;
    let word = '';
    const rest = line.slice(colon + 1);
    for (let i = 0; i < rest.length; i++) {
      const c = rest[i] as string;
      if (c === '\\' && rest[i + 1] === ' ') {
        word += ' ';
        i++;
      } else if (c === ' ' || c === '\t') {
        if (word) paths.push(word);
        word = '';
      } else word += c;
    }
    if (word) paths.push(word);
  }
  return paths;
}

/** Replaces every occurrence of the sandbox root, so diagnostics and dependency files name client paths. */
export function unmapText(text: string, root: string): string {
  return text.split(root).join('');
}
