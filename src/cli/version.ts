import { isSea } from 'node:sea';
import { Command } from 'commander';
import { nativeAddon, runtimeGlibc } from '../core/native.ts';
import { VERSION } from '../core/version.ts';
import { SCHEMA_VERSION, sqliteVersion } from '../store/db.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

export function versionCommand(runner: Runner): Command {
  return new Command('version').description('print versions: accel, Node, SQLite, store schema, platform').action(
    runner.action(async (g) => {
      const info = {
        accel: VERSION,
        platform: process.platform,
        arch: process.arch,
        node: process.versions.node,
        sqlite: sqliteVersion({ nativeBinding: nativeAddon('better_sqlite3', g.home) }),
        storeSchema: SCHEMA_VERSION,
        glibc: runtimeGlibc() ?? null,
        singleExecutable: isSea(),
      };
      return dataResult(info, () =>
        [
          `accel ${info.accel}`,
          `platform      ${info.platform}-${info.arch}${info.glibc ? ` (glibc ${info.glibc})` : ''}`,
          `node          ${info.node}${info.singleExecutable ? ' (embedded)' : ''}`,
          `sqlite        ${info.sqlite}`,
          `store schema  ${info.storeSchema}`,
        ].join('\n'),
      );
    }),
  );
}
