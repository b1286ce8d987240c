import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, lstatSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join, matchesGlob } from 'node:path';
import { promisify } from 'node:util';
import { makeDirs } from '../../core/dirs.ts';
import { AccelError } from '../../core/errors.ts';
import { normalizeArchive } from '../pkg/ar-normalize.ts';
import type { OutputRecord } from '../record.ts';
import { specName } from '../record.ts';
import { checkBinaries, floorWarning, glibcFloor } from './binary-checks.ts';
import { restoreRun } from './build-cache.ts';
import type { BuildContext, BuiltPackage, CacheTally, ScriptTally, TestTally } from './context.ts';
import { emulationPrefix } from './emulation.ts';
import { keptScripts } from './kept-scripts.ts';
import { linkMachineTools } from './machine-bin.ts';
import { type PreparedFeedstock, sysrootDir } from './prepare.ts';
import { type HostExports, ignoresExportsFrom, runDepends as runRequirements } from './run-depends.ts';
import { lastErrorLine, logLine, logTail, ranForeignProgram, runScript } from './run-script.ts';
import { ensureRuntimePackages, runtimeVersion } from './runtime-packages.ts';
import { applyPatches, extractSource, fetchSource, placeSource, type SourceOverride } from './source.ts';
import { unpackSysroot } from './sysroot.ts';
import { type StagedPackage, testOutput } from './test-run.ts';
import { buildEnv, type Workspace } from './workspace.ts';

const run = promisify(execFile);

/** Files and symlinks under `dir`, relative to it. */
function listPrefix(dir: string): string[] {
  // Walked by hand: a symlink to a directory (ncurses' lib/terminfo -> ../share/terminfo) is one entry, and
  // what lies behind it belongs to its target.
  const out: string[] = [];
  const walk = (sub: string) => {
    for (const e of readdirSync(join(dir, sub), { withFileTypes: true })) {
      const rel = sub === '' ? e.name : `${sub}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (e.isFile() || e.isSymbolicLink()) out.push(rel);
    }
  };
  walk('');
  return out.filter((p) => !p.startsWith('conda-meta/'));
}

/** Sources fetched through the store, unpacked into SRC_DIR and patched. Returns SOURCE_DATE_EPOCH. */
async function prepareSources(
  prep: PreparedFeedstock,
  ws: Workspace,
  ctx: BuildContext,
): Promise<{ epoch: number; overrides: SourceOverride[] }> {
  const record = prep.records[0] as OutputRecord;
  const overrides: SourceOverride[] = [];
  let newest = 0;
  for (const [i, source] of record.sources.entries()) {
    const got = await fetchSource(source, prep.feedstock, {
      store: ctx.store,
      allow: ctx.allow,
      stallMs: ctx.stallMs,
      overrides: ctx.sources,
      // `--source NAME=FILE` replaces a feedstock's first source; the others by their file names only.
      byFeedstock: i === 0,
    });
    if (got.override) {
      overrides.push(got.override);
      ctx.log.warn(
        `${prep.feedstock}: source ${source.url} replaced by ${got.override.file} (sha256 ${got.digest}), as --source/conda.sources says`,
      );
    }
    logLine(
      ws.log,
      `== source ${source.url} sha256:${got.digest}${got.override ? ` (override: ${got.override.file})` : ''}`,
    );
    const dir = source.folder ? join(ws.srcDir, source.folder) : ws.srcDir;
    if (source.file_name) await placeSource(ctx.store, got.digest, dir, source.file_name, prep.feedstock);
    else await extractSource(ctx.store, got.digest, dir, prep.feedstock);
    // The newest file of the archive as released, before patches touch anything: fixed by the inputs.
    for (const f of listPrefix(dir)) newest = Math.max(newest, lstatSync(join(dir, f)).mtimeMs);
    await applyPatches(record.recipe_dir, source.patches, dir, prep.feedstock);
  }
  const fromEnv = Number(ctx.env.SOURCE_DATE_EPOCH);
  const epoch = Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : Math.floor(newest / 1000);
  return { epoch, overrides };
}

interface Script {
  /** For the log and errors: the file name, or "the build script". */
  name: string;
  text: string;
}

/** Runs one build script; the new files of PREFIX are what it built. Returns the seconds it took. */
async function runBuild(
  script: Script,
  record: OutputRecord,
  ws: Workspace,
  prep: PreparedFeedstock,
  ctx: BuildContext,
  epoch: number,
  tally: string | null,
): Promise<{ files: string[]; seconds: number }> {
  const before = new Set(listPrefix(ws.prefix));
  const file = join(ws.root, `build-${record.name}.sh`);
  writeFileSync(file, script.text);
  logLine(ws.log, `== build ${script.name} for ${record.name}`);
  const started = performance.now();
  const env = buildEnv(ws, record, prep.toolchain, ctx.env, epoch);
  if (tally) env.ACCEL_CC_TALLY = tally;
  const wrap = prep.toolchain.cross ? emulationPrefix(prep.toolchain.cpu, prep.toolchain.emulator) : null;
  const code = await runScript(file, { cwd: ws.srcDir, env, log: ws.log, wrap });
  if (code !== 0) {
    if (prep.toolchain.cross && !wrap && ranForeignProgram(ws.log)) {
      throw new AccelError(
        'ACCEL_CONDA_NEEDS_EMULATION',
        `${prep.feedstock}: ${script.name} runs ${prep.toolchain.target} programs it built, and this machine cannot run them (Exec format error)\n${logTail(ws.log)}`,
        {
          hint: 'accel runs them under qemu in a private binfmt_misc (Linux ≥ 6.7 with user namespaces); on this kernel build the feedstock natively on an aarch64 machine',
        },
      );
    }
    const cause = lastErrorLine(ws.log);
    throw new AccelError(
      'ACCEL_CONDA_BUILD_FAILED',
      `${prep.feedstock}: ${script.name} failed (exit ${code})${cause ? `: ${cause}` : ''}\n${logTail(ws.log)}`,
      { hint: 'nothing was published' },
    );
  }
  writeEntryPoints(record, ws.prefix);
  return { files: listPrefix(ws.prefix).filter((f) => !before.has(f)), seconds: (performance.now() - started) / 1000 };
}

/**
 * Python entry points (`f2py = numpy.f2py.f2py2e:main`) as the launchers conda-build writes into bin/: a
 * script run by the prefix's python, whose path the package's prefix placeholder relocates on install.
 */
function writeEntryPoints(record: OutputRecord, prefix: string): void {
  for (const ep of record.entry_points) {
    const m = /^\s*([\w.-]+)\s*=\s*([\w.]+)\s*:\s*([\w.]+)\s*$/.exec(ep);
    if (!m) {
      throw new AccelError('ACCEL_CONDA_RECIPE', `${record.name}: entry point '${ep}' is not 'name = module:function'`);
    }
    const [, name, module, fn] = m as unknown as [string, string, string, string];
    const [head, ...rest] = fn.split('.');
    const file = join(prefix, 'bin', name);
    makeDirs(join(prefix, 'bin'));
    writeFileSync(
      file,
      `#!${prefix}/bin/python\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n\nfrom ${module} import ${head}\n\nif __name__ == '__main__':\n    sys.argv[0] = re.sub(r'(-script\\.pyw?|\\.exe)?$', '', sys.argv[0])\n    sys.exit(${[head, ...rest].join('.')}())\n`,
    );
    chmodSync(file, 0o755);
  }
}

/** An output's `files:` globs over what the shared build installed (a directory takes what is under it). */
function pickFiles(record: OutputRecord, files: string[]): string[] {
  const hit = (f: string, p: string) => f === p || f.startsWith(`${p.replace(/\/$/, '')}/`) || matchesGlob(f, p);
  return files.filter((f) => record.files.some((p) => hit(f, p)) && !record.files_exclude.some((p) => hit(f, p)));
}

/**
 * An output's run requirements (run-depends.ts has conda-build's rules): the run_exports of the channel
 * packages it names in `host` are read from the packages, unless the output ignores all of a package's.
 */
async function runDepends(
  record: OutputRecord,
  prep: PreparedFeedstock,
  ctx: BuildContext,
  glibc: string | null,
): Promise<string[]> {
  const named = new Set(record.requirements.host.map(specName));
  const host: HostExports[] = [];
  for (const p of prep.host) {
    if (!named.has(p.name) || ignoresExportsFrom(record, p.name)) continue;
    host.push({ name: p.name, ...(await ctx.tools.runExports(p.path)) });
  }
  const runtimeMajor = runtimeVersion(prep.toolchain)?.split('.')[0] ?? null;
  return runRequirements({ record, host, runtimeMajor, glibc });
}

/**
 * Builds a prepared feedstock in its workspace, as conda-build does: sources, then the recipe's own build
 * script once (a split recipe's top level), then each output. An output with a script of its own gets a fresh
 * host prefix and the work directory as the top-level build left it; one without takes its `files:` from the
 * top-level build. One `.conda` per output, each checked (ELF architecture) and given its true run
 * dependencies, then each output's tests. Publishes nothing: the caller does, once all passed.
 */
export async function buildPrepared(prep: PreparedFeedstock, ws: Workspace, ctx: BuildContext): Promise<Built> {
  const pinned = prep.toolchain.pinned;
  if (pinned) {
    await unpackSysroot(pinned, sysrootDir(ws), ctx, prep.toolchain.paths.CC ?? 'gcc');
    logLine(ws.log, `== sysroot ${pinned.id}: glibc ${pinned.glibc}, in ${sysrootDir(ws)}`);
  }
  const { epoch, overrides } = await prepareSources(prep, ws, ctx);
  await installEnvironments(prep, ws, ctx);
  // The build scripts' compiles go through the compile cache, tagged so that this feedstock's are counted.
  const tally = ctx.cc && prep.toolchain.paths.CC ? `conda-${process.pid}-${randomBytes(6).toString('hex')}` : null;
  try {
    return await buildOutputs(prep, ws, ctx, epoch, overrides, tally);
  } finally {
    if (tally) ctx.cc?.take(tally);
  }
}

async function buildOutputs(
  prep: PreparedFeedstock,
  ws: Workspace,
  ctx: BuildContext,
  epoch: number,
  overrides: SourceOverride[],
  tally: string | null,
): Promise<Built> {
  const { writeCondaPackage } = await import('../pkg/write.ts');
  let scriptSeconds = 0;
  const staged: StagedPackage[] = [];
  const first = prep.records[0] as OutputRecord;
  const top = first.top_level?.script ?? null;
  // Outputs that pick files from the top-level build are packaged first, while its prefix is intact.
  const own = (r: OutputRecord) => r.script !== null && !r.script.shared;
  const ordered = [...prep.records.filter((r) => !own(r)), ...prep.records.filter(own)];
  let shared: string[] = [];
  let runs = 0;
  const kept = keptScripts(prep, ws, ctx, epoch, top);
  // A script whose result the store keeps is not run: its files are put back as it left them.
  const scriptRun = async (script: Script, record: OutputRecord) => {
    const i = runs;
    if (kept.replay) {
      const files = restoreRun(ctx.store, kept.replay.runs[i] ?? [], ws.prefix);
      logLine(
        ws.log,
        `== build ${script.name} for ${record.name}: ${files.length} files as the build with the same inputs left them`,
      );
      return { files, seconds: 0 };
    }
    const r = await runBuild(script, record, ws, prep, ctx, epoch, tally);
    await kept.recorder?.record(ws.prefix, r.files);
    return r;
  };
  if (top) {
    const r = await scriptRun({ name: top.file ?? 'build/script', text: top.text }, first);
    shared = r.files;
    scriptSeconds += r.seconds;
    runs++;
  }
  const workCopy = `${ws.srcDir}.after-top-level`;
  if (prep.records.filter(own).length + runs > 1) await copyTree(ws.srcDir, workCopy);
  for (const record of ordered) {
    let files: string[];
    if (own(record)) {
      const script = record.script as NonNullable<OutputRecord['script']>;
      if (runs > 0) {
        // conda-build gives each output its own host environment and the work directory the top level left.
        rmSync(ws.prefix, { recursive: true, force: true });
        makeDirs(ws.prefix);
        for (const p of prep.host) await ctx.tools.install(p.path, ws.prefix);
        rmSync(ws.srcDir, { recursive: true, force: true });
        await copyTree(workCopy, ws.srcDir);
      }
      // Sibling outputs it names in host (lz4-c-static on lz4-c) are installed from this build, and are
      // not its files.
      for (const spec of record.requirements.host) {
        const sibling = staged.find((s) => s.record.name === specName(spec));
        if (sibling) await ctx.tools.install(sibling.path, ws.prefix);
      }
      const r = await scriptRun({ name: script.file ?? 'the output’s script', text: script.text }, record);
      runs++;
      scriptSeconds += r.seconds;
      files = record.files.length > 0 ? pickFiles(record, r.files) : r.files;
    } else {
      files = record.files.length > 0 ? pickFiles(record, shared) : record.script ? shared : [];
    }
    const binaries = checkBinaries(ws.prefix, files, record, prep.toolchain);
    for (const f of files.filter((f) => f.endsWith('.a'))) {
      if (lstatSync(join(ws.prefix, f)).isFile()) normalizeArchive(join(ws.prefix, f));
    }
    const glibc = record.subdir === 'noarch' ? null : glibcFloor(record, binaries, prep.toolchain);
    const above = record.subdir === 'noarch' ? null : floorWarning(record, glibc, binaries, ws.prefix, prep.toolchain);
    if (above) {
      ctx.log.warn(above);
      logLine(ws.log, `== warning: ${above}`);
    }
    const runExports = Object.fromEntries(
      Object.entries(record.run_exports).filter(([, v]) => (v as string[]).length > 0),
    );
    const depends = await runDepends(record, prep, ctx, glibc);
    const about: Record<string, unknown> = Object.fromEntries(
      Object.entries(record.about).filter(([, v]) => v !== null),
    );
    if (overrides.length > 0) about.extra = { accel_source_overrides: overrides };
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
      about,
      runExports,
      recipeDir: record.recipe_dir,
      placeholder: ws.prefix,
      outDir: ws.outDir,
    });
    logLine(ws.log, `== packaged ${pkg.filename} (${files.length} files, sha256:${pkg.sha256})`);
    staged.push({
      path: pkg.path,
      output: record,
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
        channel: ws.outDir,
        path: pkg.path,
      },
    });
  }
  rmSync(workCopy, { recursive: true, force: true });
  if (kept.recorder && kept.key) {
    const refused = await kept.recorder.keep(kept.key, ws.log);
    logLine(
      ws.log,
      refused ? `== build result not kept: ${refused}` : `== build result kept (build inputs ${kept.key})`,
    );
  }
  const scripts: ScriptTally = kept.replay ? { run: 0, reused: runs } : { run: runs, reused: 0 };
  if (staged.some((s) => s.record.depends.some((d) => /^lib(gcc|stdcxx)\b/.test(d)))) {
    await ensureRuntimePackages(ctx, prep.toolchain, ws.root);
  }
  const cc = tally && ctx.cc ? ctx.cc.take(tally) : null;
  if (cc) logLine(ws.log, `== compile cache: ${cc.hit} hits, ${cc.miss} misses, ${cc.uncacheable} uncacheable`);
  const tests: TestTally = { run: 0, cached: 0 };
  if (ctx.test !== 'skip') {
    for (const s of staged) {
      const t = await testOutput({ record: s.output, staged, ws, toolchain: prep.toolchain, ctx });
      scriptSeconds += t.seconds;
      if (t.ran) tests.run++;
      if (t.cached) tests.cached++;
    }
  }
  return { staged, scriptSeconds, cc, tests, scripts };
}

interface Built {
  staged: StagedPackage[];
  scriptSeconds: number;
  cc: CacheTally | null;
  tests: TestTally;
  scripts: ScriptTally;
}

/** The build and host prefixes: packages from the channel, and gnuconfig's scripts from the machine. */
async function installEnvironments(prep: PreparedFeedstock, ws: Workspace, ctx: BuildContext): Promise<void> {
  for (const p of prep.build) await ctx.tools.install(p.path, ws.buildPrefix);
  for (const p of prep.host) await ctx.tools.install(p.path, ws.prefix);
  // Where conda-forge's tool packages put data that recipes copy from $BUILD_PREFIX: gnuconfig's and
  // libtool's config.guess and config.sub (to replace a tarball's outdated ones), libtool's build-aux.
  const share = join(ws.buildPrefix, 'share');
  if (prep.toolchain.provides.has('gnuconfig') || prep.toolchain.provides.has('libtool')) {
    makeDirs(join(share, 'gnuconfig'));
    for (const f of ['config.guess', 'config.sub'])
      copyFileSync(join('/usr/share/misc', f), join(share, 'gnuconfig', f));
  }
  // Debian links libtool's config.* to /usr/share/misc: copied as files, so that they resolve anywhere.
  if (prep.toolchain.provides.has('libtool')) await run('cp', ['-RL', '/usr/share/libtool', join(share, 'libtool')]);
  linkMachineTools(join(ws.buildPrefix, 'bin'), prep.toolchain.provides, ctx.env.PATH);
  // The compile cache: the compilers' names in $BUILD_PREFIX/bin (which leads PATH, and CC names no path)
  // link to accel's native client, which finds the real compiler further down PATH.
  if (ctx.cc && prep.toolchain.paths.CC) {
    await ctx.cc.start();
    for (const v of ['CC', 'CXX']) {
      const real = prep.toolchain.paths[v];
      if (real) symlinkSync(ctx.cc.client, join(ws.buildPrefix, 'bin', basename(real)));
    }
  }
}

async function copyTree(from: string, to: string): Promise<void> {
  await run('cp', ['-a', '--reflink=auto', from, to]);
}

export function toBuilt(s: StagedPackage, size: number): BuiltPackage {
  return { name: s.record.name, filename: s.record.filename, subdir: s.record.subdir, sha256: s.record.sha256, size };
}
