import { lstatSync, readdirSync, writeFileSync } from 'node:fs';
import { join, matchesGlob, relative } from 'node:path';
import { AccelError } from '../../core/errors.ts';
import type { OutputRecord } from '../record.ts';
import { specName } from '../record.ts';
import type { BuildContext, BuiltPackage } from './context.ts';
import type { PreparedFeedstock } from './prepare.ts';
import { logLine, logTail, runScript } from './run-script.ts';
import { applyPatches, extractSource, fetchSource } from './source.ts';
import { type StagedPackage, testOutput } from './test-run.ts';
import { buildEnv, type Workspace } from './workspace.ts';

/** Files and symlinks under `dir`, relative to it. */
function listPrefix(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() || e.isSymbolicLink())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .filter((p) => !p.startsWith('conda-meta/'));
}

/** Sources fetched through the store, unpacked into SRC_DIR and patched. Returns SOURCE_DATE_EPOCH. */
export async function prepareSources(prep: PreparedFeedstock, ws: Workspace, ctx: BuildContext): Promise<number> {
  const record = prep.records[0] as OutputRecord;
  for (const source of record.sources) {
    const digest = await fetchSource(source, prep.feedstock, {
      store: ctx.store,
      allow: ctx.allow,
      stallMs: ctx.stallMs,
    });
    logLine(ws.log, `== source ${source.url} sha256:${digest}`);
    const dir = source.folder ? join(ws.srcDir, source.folder) : ws.srcDir;
    await extractSource(ctx.store, digest, dir, prep.feedstock);
    await applyPatches(record.recipe_dir, source.patches, dir, prep.feedstock);
  }
  const fromEnv = Number(ctx.env.SOURCE_DATE_EPOCH);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  // The newest file of the unpacked sources: fixed by the inputs, and a sensible "built at" for a release.
  let newest = 0;
  for (const f of listPrefix(ws.srcDir)) newest = Math.max(newest, lstatSync(join(ws.srcDir, f)).mtimeMs);
  return Math.floor(newest / 1000);
}

/** Runs one build script; the new files of PREFIX are what it built. Returns the seconds it took. */
async function runBuild(
  record: OutputRecord,
  ws: Workspace,
  prep: PreparedFeedstock,
  ctx: BuildContext,
  epoch: number,
): Promise<{ files: string[]; seconds: number }> {
  const before = new Set(listPrefix(ws.prefix));
  const script = join(ws.root, `build-${record.name}.sh`);
  writeFileSync(script, record.script?.text ?? '');
  logLine(ws.log, `== build ${record.script?.file ?? 'inline script'} for ${record.name}`);
  const started = performance.now();
  const env = buildEnv(ws, record, prep.toolchain, ctx.env, epoch);
  const code = await runScript(script, { cwd: ws.srcDir, env, log: ws.log });
  if (code !== 0) {
    throw new AccelError(
      'ACCEL_CONDA_BUILD_FAILED',
      `${prep.feedstock}: ${record.script?.file ?? 'the build script'} failed (exit ${code})\n${logTail(ws.log)}`,
      { hint: 'nothing was published' },
    );
  }
  return { files: listPrefix(ws.prefix).filter((f) => !before.has(f)), seconds: (performance.now() - started) / 1000 };
}

/** An output's `files:` globs over what the shared build installed (a directory takes what is under it). */
function pickFiles(record: OutputRecord, files: string[]): string[] {
  const hit = (f: string, p: string) => f === p || f.startsWith(`${p.replace(/\/$/, '')}/`) || matchesGlob(f, p);
  return files.filter((f) => record.files.some((p) => hit(f, p)) && !record.files_exclude.some((p) => hit(f, p)));
}

/** run requirements plus the run_exports of the host packages the recipe names (conda-build's rule). */
async function runDepends(record: OutputRecord, prep: PreparedFeedstock, ctx: BuildContext): Promise<string[]> {
  const depends = [...record.requirements.run];
  const named = new Set(record.requirements.host.map(specName));
  for (const p of prep.host) {
    if (!named.has(p.name)) continue;
    const ex = await ctx.tools.runExports(join(ctx.channel, p.subdir, p.filename));
    for (const spec of [...ex.weak, ...ex.strong]) {
      const name = specName(spec);
      if (name === record.name) continue;
      const i = depends.findIndex((d) => specName(d) === name);
      if (i < 0) depends.push(spec);
      else if (depends[i]?.trim() === name) depends[i] = spec;
    }
  }
  return [...new Set(depends)].sort();
}

/**
 * Builds a prepared feedstock in its workspace: sources, host packages into PREFIX, the build script(s),
 * one `.conda` per output, then each output's tests. Publishes nothing: the caller does, once all passed.
 */
export async function buildPrepared(
  prep: PreparedFeedstock,
  ws: Workspace,
  ctx: BuildContext,
): Promise<{ staged: StagedPackage[]; scriptSeconds: number }> {
  const epoch = await prepareSources(prep, ws, ctx);
  for (const p of prep.build) await ctx.tools.install(join(ctx.channel, p.subdir, p.filename), ws.buildPrefix);
  for (const p of prep.host) await ctx.tools.install(join(ctx.channel, p.subdir, p.filename), ws.prefix);
  const { writeCondaPackage } = await import('../pkg/write.ts');
  let scriptSeconds = 0;
  let shared: string[] | undefined;
  const staged: StagedPackage[] = [];
  const written: { record: OutputRecord; path: string }[] = [];
  for (const record of prep.records) {
    let files: string[];
    if (record.script?.shared) {
      if (!shared) {
        const r = await runBuild(record, ws, prep, ctx, epoch);
        shared = r.files;
        scriptSeconds += r.seconds;
      }
      files = record.files.length > 0 ? pickFiles(record, shared) : shared;
    } else if (record.script) {
      const r = await runBuild(record, ws, prep, ctx, epoch);
      scriptSeconds += r.seconds;
      files = record.files.length > 0 ? pickFiles(record, r.files) : r.files;
    } else {
      files = record.files.length > 0 && shared ? pickFiles(record, shared) : [];
    }
    const runExports = Object.fromEntries(
      Object.entries(record.run_exports).filter(([, v]) => (v as string[]).length > 0),
    );
    const depends = await runDepends(record, prep, ctx);
    const pkg = await writeCondaPackage({
      prefix: ws.prefix,
      files,
      index: {
        name: record.name,
        version: record.version,
        build: record.build_string,
        build_number: record.build_number,
        depends,
        constrains: record.requirements.run_constrained,
        subdir: record.subdir,
        timestamp: epoch * 1000,
        ...(record.about.license ? { license: record.about.license } : {}),
        ...(record.noarch ? { noarch: record.noarch as 'generic' | 'python' } : {}),
      },
      about: Object.fromEntries(Object.entries(record.about).filter(([, v]) => v !== null)),
      runExports,
      recipeDir: record.recipe_dir,
      placeholder: ws.prefix,
      outDir: ws.outDir,
    });
    logLine(ws.log, `== packaged ${pkg.filename} (${files.length} files, sha256:${pkg.sha256})`);
    written.push({ record, path: pkg.path });
    staged.push({
      path: pkg.path,
      record: {
        subdir: record.subdir,
        filename: pkg.filename,
        name: record.name,
        version: record.version,
        build: record.build_string,
        build_number: record.build_number,
        depends,
        sha256: pkg.sha256,
        timestamp: epoch * 1000,
      },
    });
  }
  if (ctx.test !== 'skip') {
    for (const { record } of written) {
      scriptSeconds += await testOutput({ record, staged, ws, toolchain: prep.toolchain, ctx });
    }
  }
  return { staged, scriptSeconds };
}

export function toBuilt(s: StagedPackage, size: number): BuiltPackage {
  return { name: s.record.name, filename: s.record.filename, subdir: s.record.subdir, sha256: s.record.sha256, size };
}
