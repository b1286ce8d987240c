import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OutputRecord } from '../record.ts';
import { specName } from '../record.ts';
import { BuildRecorder, buildKey, keptBuild } from './build-cache.ts';
import type { BuildContext } from './context.ts';
import type { PreparedFeedstock } from './prepare.ts';
import { logLine } from './run-script.ts';
import { buildEnv, type Workspace } from './workspace.ts';

/**
 * The build scripts' kept result, when the store has one for these inputs (`replay`), or the recorder that
 * keeps this build's. Neither when the cache is off, or an output's tests read the work tree (which a build
 * whose scripts did not run leaves as the sources were).
 */
export function keptScripts(
  prep: PreparedFeedstock,
  ws: Workspace,
  ctx: BuildContext,
  epoch: number,
  top: { text: string } | null,
): { key: string | null; replay: ReturnType<typeof keptBuild>; recorder: BuildRecorder | null } {
  const none = { key: null, replay: null, recorder: null };
  const first = prep.records[0] as OutputRecord;
  const runs = [
    ...(top ? [{ record: first, text: top.text }] : []),
    ...prep.records
      .filter((r) => r.script !== null && !r.script.shared)
      .map((r) => ({ record: r, text: (r.script as { text: string }).text })),
  ];
  if (!ctx.buildCache || runs.length === 0) return none;
  const siblings = new Set(prep.records.map((r) => r.name));
  const reader = prep.records.find((r) => testReadsWorkTree(r));
  if (reader) {
    logLine(ws.log, `== build scripts always run: ${reader.name}'s tests read the work tree`);
    return none;
  }
  const key = buildKey({
    runs: runs.map(({ record, text }) => ({
      output: record.name,
      text,
      env: buildEnv(ws, record, prep.toolchain, ctx.env, epoch),
      // A sibling output in host (an exact pin names its build number) is named only: its files come from
      // this very build, whose inputs the key holds.
      shape: {
        host: record.requirements.host.map((h) => (siblings.has(specName(h)) ? specName(h) : h)),
        entry_points: record.entry_points,
      },
    })),
    srcDir: ws.srcDir,
    recipeDir: first.recipe_dir,
    prefix: ws.prefix,
    buildPrefix: ws.buildPrefix,
    identities: [prep.toolchain.identity],
    emulator: prep.toolchain.cross ? prep.toolchain.emulator : null,
    machinePackages: '/var/lib/dpkg/status',
  });
  const replay = keptBuild(ctx.store, key);
  if (replay) {
    logLine(
      ws.log,
      `== build scripts not run: a build with the same inputs (build inputs ${key}) ran them; its log: accel store get ${replay.log}`,
    );
    return { key, replay, recorder: null };
  }
  return { key, replay: null, recorder: new BuildRecorder(ctx.store, first.recipe_dir) };
}

/** An output's tests take files from the work tree (test/source_files) or read $SRC_DIR. */
function testReadsWorkTree(record: OutputRecord): boolean {
  if (record.test.source_files.length > 0) return true;
  const texts = [...record.test.commands];
  for (const f of ['run_test.sh', ...record.test.files]) {
    try {
      texts.push(readFileSync(join(record.recipe_dir, f), 'latin1'));
    } catch {
      // Not a file (a directory of test files, or no run_test.sh).
    }
  }
  return texts.some((t) => /\bSRC_DIR\b/.test(t));
}
