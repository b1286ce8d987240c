import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseSearchDirs } from '../../compiler/search-dirs.ts';
import { makeDirs } from '../../core/dirs.ts';
import { AccelError } from '../../core/errors.ts';
import { VERSION } from '../../core/version.ts';
import type { Digest } from '../../store/digest.ts';
import { blobPath } from '../../store/layout.ts';
import type { BuildContext } from './context.ts';
import { unpackDeb } from './deb.ts';
import { compareVersions } from './match.ts';

/** One .deb of a pinned sysroot, as the Debian archive's Packages index lists it. */
export interface PinnedDeb {
  name: string;
  version: string;
  /** Its path under the archive (`Filename:`), the same on every Debian mirror. */
  path: string;
  sha256: string;
  size: number;
}

/**
 * An old C library for a target, in Debian's cross layout (`usr/<triplet>/{include,lib}`): what a build links
 * against instead of the machine's newer one, so that its packages install where older systems are. It brings
 * the GCC runtime of its release too (libgcc_s, libstdc++), whose floor is its glibc's, not the machine's.
 */
export interface PinnedSysroot {
  id: string;
  target: string;
  triplet: string;
  glibc: string;
  /** The GCC version of its runtime libraries: the version of the libgcc and libstdcxx packages made from them. */
  runtime: string;
  /**
   * Its libstdc++ headers (`usr/<triplet>/include/c++/<this>`): C++ compiles against them, not the compiler's
   * own, so that objects need no libstdc++ symbol newer than the runtime they link against has.
   */
  cxxHeaders: string;
  debs: PinnedDeb[];
}

const POOL = 'pool/main';

/**
 * Debian 11 (bullseye): glibc 2.31 and GCC 10's runtime with its C++ headers, looked up in bullseye's
 * Packages index (binary-all; the index's own sha256 checked against the signed InRelease).
 */
export const PINNED_SYSROOTS: readonly PinnedSysroot[] = [
  {
    id: 'debian11-arm64-glibc2.31',
    target: 'linux-aarch64',
    triplet: 'aarch64-linux-gnu',
    glibc: '2.31',
    runtime: '10.2.1',
    cxxHeaders: '10',
    debs: [
      {
        name: 'libc6-arm64-cross',
        version: '2.31-9cross4',
        path: `${POOL}/c/cross-toolchain-base/libc6-arm64-cross_2.31-9cross4_all.deb`,
        sha256: 'ccd237814281910e72422a6e86a6ef7570105fc69119ff8fc82f6a4827a8a015',
        size: 1233020,
      },
      {
        name: 'libc6-dev-arm64-cross',
        version: '2.31-9cross4',
        path: `${POOL}/c/cross-toolchain-base/libc6-dev-arm64-cross_2.31-9cross4_all.deb`,
        sha256: '4b88456f6913474587be547a865c6b42756b2031ca11ddf6285ea6ff4275a48d',
        size: 2029548,
      },
      {
        name: 'linux-libc-dev-arm64-cross',
        version: '5.10.13-1cross4',
        path: `${POOL}/c/cross-toolchain-base/linux-libc-dev-arm64-cross_5.10.13-1cross4_all.deb`,
        sha256: '3a5c7920a299c88f69b7d64eb60fb6e65631cd57721a30ed60a2f6b7adf931d3',
        size: 1375372,
      },
      {
        name: 'libgcc-s1-arm64-cross',
        version: '10.2.1-6cross1',
        path: `${POOL}/g/gcc-10-cross/libgcc-s1-arm64-cross_10.2.1-6cross1_all.deb`,
        sha256: '2966823a38c100f77786a49f734d240c892fc86c473dbf1c862c23424900fd83',
        size: 34496,
      },
      {
        name: 'libstdc++6-arm64-cross',
        version: '10.2.1-6cross1',
        path: `${POOL}/g/gcc-10-cross/libstdc++6-arm64-cross_10.2.1-6cross1_all.deb`,
        sha256: 'fe90e9cdf5250a3ea77961223a3953f1fd54bd3c579053b762ba990aa4f61c4f',
        size: 410428,
      },
      {
        name: 'libstdc++-10-dev-arm64-cross',
        version: '10.2.1-6cross1',
        path: `${POOL}/g/gcc-10-cross/libstdc++-10-dev-arm64-cross_10.2.1-6cross1_all.deb`,
        sha256: 'ce6e193cfa963ebd894c48ca4bfd21dd7a95a5e74293fea68789abdbf3904b23',
        size: 1681888,
      },
    ],
  },
];

/** The glibc conda-forge's compilers assume when a variant names no `c_stdlib_version` (its sysroot's). */
export const DEFAULT_STDLIB = '2.17';

/**
 * The sysroot a cross build links against: the newest pinned one whose glibc is no newer than the variant's
 * `c_stdlib_version` (conda-forge's 2.17 when it names none), else the oldest pinned (nothing older exists to
 * get); null for the machine's (`conda.sysroot: machine`, or no pin for the target).
 */
export function pickSysroot(
  target: string,
  variantStdlib: string | undefined,
  mode: 'pinned' | 'machine',
): PinnedSysroot | null {
  if (mode === 'machine') return null;
  const stdlib = variantStdlib ?? DEFAULT_STDLIB;
  const pinned = PINNED_SYSROOTS.filter((s) => s.target === target).sort((a, b) => compareVersions(a.glibc, b.glibc));
  return pinned.findLast((s) => compareVersions(s.glibc, stdlib) <= 0) ?? pinned[0] ?? null;
}

/** Where the archive serves a pinned .deb, or, with `conda.mirror`, where accel's mirror serves that URL. */
export function debUrl(deb: PinnedDeb, archive: string, mirror: string): string {
  const upstream = new URL(`${archive.replace(/\/+$/, '')}/${deb.path}`);
  if (!mirror) return upstream.href;
  const scheme = upstream.protocol.replace(/:$/, '');
  return `${mirror.replace(/\/+$/, '')}/${scheme}/${upstream.host}${upstream.pathname}`;
}

/**
 * Puts the pinned .debs in the store (each checked against its sha256 before it becomes visible; a .deb the
 * store holds is never fetched again, so every later build is offline) and unpacks them into `dir`.
 */
export async function unpackSysroot(pinned: PinnedSysroot, dir: string, ctx: BuildContext, cc: string): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  makeDirs(dir);
  for (const deb of pinned.debs) {
    const digest = await storeDeb(deb, ctx);
    await unpackDeb(blobPath(ctx.store.layout, digest), dir, `${deb.name}_${deb.version}`);
  }
  // The link-time names of the release's libstdc++, where -L finds them before the compiler's own: the -dev
  // package keeps them in GCC 10's compiler directory, which the machine's gcc 12 never searches.
  const lib = join(dir, 'usr', pinned.triplet, 'lib');
  symlinkSync('libstdc++.so.6', join(lib, 'libstdc++.so'));
  const gccLib = join(dir, 'usr', 'lib', 'gcc-cross', pinned.triplet, pinned.cxxHeaders);
  for (const a of ['libstdc++.a', 'libstdc++fs.a', 'libsupc++.a']) {
    symlinkSync(relative(lib, join(gccLib, a)), join(lib, a));
  }
  writeFileSync(specsFile(dir), startFileSpecs(cc, lib));
  const compat = glibcCompatHeader(dir, pinned.triplet);
  if (compat) writeFileSync(compat.path, compat.text);
}

function specsFile(root: string): string {
  return join(root, 'gcc.specs');
}

/**
 * A gcc specs file whose `startfile` and `endfile` name the sysroot's C library start files (Scrt1.o,
 * crti.o, crtn.o, …) by absolute path, gcc's own (crtbeginS.o) unchanged: gcc would take the machine's
 * first, and Scrt1.o of glibc 2.34+ calls `__libc_start_main@GLIBC_2.34`. A specs file, not `-B`: libtool
 * passes `-specs=` through to the link and drops `-B`.
 */
function startFileSpecs(cc: string, lib: string): string {
  const r = spawnSync(cc, ['-dumpspecs'], { encoding: 'utf8' });
  const lines = (r.stdout ?? '').split('\n');
  const out: string[] = [];
  for (const name of ['*startfile:', '*endfile:']) {
    const at = lines.indexOf(name);
    const body = at < 0 ? undefined : lines[at + 1];
    if (r.status !== 0 || body === undefined) {
      throw new AccelError('ACCEL_CONDA_NO_TOOLCHAIN', `${cc} -dumpspecs has no ${name.slice(1, -1)} spec`, {
        hint: `run ${cc} -dumpspecs to see why`,
      });
    }
    out.push(
      name,
      body.replace(/\b((?:S|g|gr|r)?crt1|crti|crtn)\.o%s/g, (_m, f: string) => `${lib}/${f}.o`),
      '',
    );
  }
  return out.join('\n');
}

async function storeDeb(deb: PinnedDeb, ctx: BuildContext): Promise<Digest> {
  const expected = deb.sha256 as Digest;
  if (ctx.store.has(expected) && ctx.store.stat(expected)) return expected;
  const what = `${deb.name}_${deb.version}`;
  if (!ctx.debianArchive) {
    throw new AccelError('ACCEL_CONDA_SYSROOT_FETCH', `${what}: no Debian archive to fetch the pinned sysroot from`, {
      hint: 'set conda.debianArchive (the URL holding pool/), or conda.sysroot: machine to link against this machine’s cross libc',
    });
  }
  let url: string;
  try {
    url = debUrl(deb, ctx.debianArchive, ctx.condaMirror);
  } catch (err) {
    throw new AccelError('ACCEL_CONDA_SYSROOT_FETCH', `${what}: ${(err as Error).message}`, {
      hint: 'conda.debianArchive and conda.mirror must be http:// or https:// URLs',
      cause: err,
    });
  }
  const { Download } = await import('../../fetch/download.ts');
  // The mirror the user named is reached wherever it is (a loopback or LAN mirror is the point of it).
  const allow = ctx.condaMirror ? [...ctx.allow, new URL(ctx.condaMirror).host] : ctx.allow;
  const download = new Download(ctx.store, {
    candidates: [url],
    expected,
    allow,
    stallMs: ctx.stallMs,
    userAgent: `accel/${VERSION}`,
  });
  let info: Awaited<typeof download.done>;
  try {
    info = await download.done;
  } catch (err) {
    const mismatch = (err as { code?: string }).code === 'ACCEL_STORE_DIGEST_MISMATCH';
    throw new AccelError(
      'ACCEL_CONDA_SYSROOT_FETCH',
      `${what}: ${mismatch ? 'does not match its pinned sha256' : 'cannot download'} ${url}: ${(err as Error).message}`,
      {
        hint: mismatch
          ? 'the archive or mirror served other bytes than the pinned .deb: nothing was stored'
          : 'the pinned sysroot is not in the store yet, so its archive (or conda.mirror) must be reachable once',
        cause: err,
      },
    );
  }
  if (!info) {
    const head = await download.head;
    const status = head.kind === 'status' ? ` (HTTP ${head.status})` : '';
    throw new AccelError('ACCEL_CONDA_SYSROOT_FETCH', `${what}: cannot download ${url}${status}`, {
      hint: 'check conda.debianArchive (the Debian archive still serves bullseye under pool/) or conda.mirror',
    });
  }
  return info.digest;
}

/** The first symbol version of glibc on each target: the one conda-forge's 2.17 sysroot binds every function to. */
const FIRST_GLIBC: Readonly<Record<string, string>> = { 'aarch64-linux-gnu': 'GLIBC_2.17' };

/**
 * libm functions that glibc gave new symbol versions without changing what they compute (2.27 the float forms,
 * 2.29 the double ones: the new versions only drop the SVID `matherr` error path), and whose first version
 * every later glibc still serves. A link against the pinned glibc binds the newest, and `pow` alone raises a
 * package's floor to 2.29; a real 2.17 sysroot binds the first. Other moved symbols (glob, fmemopen, lgamma,
 * quick_exit) changed behaviour too, so they keep the version their headers ask for.
 */
const SAME_MEANING = ['exp', 'exp2', 'log', 'log2', 'pow', 'expf', 'exp2f', 'logf', 'log2f', 'powf'];

/**
 * A header forced into every C and C++ compile on the sysroot (`-include`) that binds each `SAME_MEANING`
 * function to the target's first glibc version, as a 2.17 sysroot would: `.symver` on a reference makes it a
 * reference to that version, and a file that calls none of them gains nothing. Assembler sources skip it
 * (`__ASSEMBLER__`; `.s` files are not preprocessed at all). A shared library that defines a global `pow`
 * of its own would not link (ld: version node not found); none of the shared feedstocks does. Its name
 * carries its digest, so that the flags, and with them the toolchain identity and every input key, change
 * with its text. Null for a target whose first version is not known.
 */
function glibcCompatHeader(root: string, triplet: string): { path: string; text: string } | null {
  const first = FIRST_GLIBC[triplet];
  if (!first) return null;
  const text = [
    `/* Written by accel: bind libm functions whose newer versions compute the same to ${first}. */`,
    '#ifndef ACCEL_GLIBC_COMPAT_H',
    '#define ACCEL_GLIBC_COMPAT_H',
    '#ifndef __ASSEMBLER__',
    ...SAME_MEANING.map((f) => `__asm__(".symver ${f},${f}@${first}");`),
    '#endif',
    '#endif',
    '',
  ].join('\n');
  const digest = createHash('sha256').update(text).digest('hex').slice(0, 12);
  return { path: join(root, `accel-glibc-compat-${digest}.h`), text };
}

/** The compiler and linker flags that make the machine's cross gcc use a sysroot in Debian's cross layout. */
export interface SysrootFlags {
  cflags: string;
  cxxflags: string;
  ldflags: string;
}

/**
 * Debian's cross gcc searches its own `/usr/<triplet>/{include,lib}` before any `--sysroot`, so `--sysroot`
 * alone would mix the machine's headers and start files into the build. Instead: the compiler's own search
 * list with the machine's libc headers replaced by the sysroot's, and for C++ its libstdc++ headers by the
 * sysroot's release's (`cxxHeaders`: gcc 12's headers call libstdc++ symbols GCC 10's runtime lacks, such as
 * `std::__throw_bad_array_new_length@GLIBCXX_3.4.29`), given by `-nostdinc` and then each directory in the
 * order gcc would use it, which keeps `#include_next` working, then `-include` of the header that binds
 * libm's re-versioned functions to their first version (glibcCompatHeader); a specs file for the start files
 * and `-L` for the libraries (searched before gcc's own directories), and `--sysroot` so that the linker
 * scripts' absolute paths (libc.so) resolve inside it.
 */
export function sysrootFlags(options: {
  root: string;
  triplet: string;
  cc?: string;
  cxx?: string;
  cxxHeaders?: string;
}): SysrootFlags {
  const { root, triplet, cxxHeaders } = options;
  const include = join(root, 'usr', triplet, 'include');
  const lib = join(root, 'usr', triplet, 'lib');
  const swap = (d: IncludeDir) => {
    if (d.libc) return include;
    return cxxHeaders && d.cxx !== undefined ? join(include, 'c++', cxxHeaders) + d.cxx : d.dir;
  };
  const compat = glibcCompatHeader(root, triplet);
  const headers = (compiler: string | undefined, lang: 'c' | 'c++') => {
    if (!compiler) return '';
    const own = compilerIncludes(compiler, lang, triplet);
    const dirs = own.map(swap);
    if (!dirs.includes(include)) dirs.push(include);
    // Meson drops every `-isystem` that names one of the compiler's default directories (GCC's own stddef.h,
    // arm_neon.h, …), which -nostdinc has taken away: they come again with -idirafter, which meson leaves, after
    // the sysroot's libc (a duplicate of a directory still listed is ignored by gcc).
    const internal = own.filter((d, i) => dirs[i] === d.dir && !d.libc).map((d) => `-idirafter ${d.dir}`);
    return [
      '-nostdinc',
      ...dirs.map((d) => `-isystem ${d}`),
      ...internal,
      ...(compat ? [`-include ${compat.path}`] : []),
    ].join(' ');
  };
  return {
    cflags: headers(options.cc, 'c'),
    cxxflags: headers(options.cxx, 'c++'),
    ldflags: `--sysroot=${root} -specs=${specsFile(root)} -L${lib}`,
  };
}

/** A directory of the compiler's `#include <…>` list, and whether it is the machine's libc or libstdc++ headers. */
interface IncludeDir {
  dir: string;
  /** The machine's cross libc headers (`/usr/<triplet>/include`). */
  libc: boolean;
  /** For its libstdc++ headers (`…/include/c++/<version>…`): the rest after the version ('', '/backward', …). */
  cxx?: string;
}

const includes = new Map<string, IncludeDir[]>();

/**
 * The compiler's `#include <…>` list, the machine's cross libc headers (`/usr/<triplet>/include`) and its
 * libstdc++ headers (`…/include/c++/<version>` and the directories under it) marked.
 */
function compilerIncludes(compiler: string, lang: 'c' | 'c++', triplet: string): IncludeDir[] {
  const key = `${compiler} ${lang}`;
  const known = includes.get(key);
  if (known) return known;
  const r = spawnSync(compiler, [`-x${lang}`, '-E', '-v', '/dev/null'], { encoding: 'utf8' });
  const dirs = parseSearchDirs(r.stderr ?? '');
  if (r.status !== 0 || !dirs) {
    throw new AccelError('ACCEL_CONDA_NO_TOOLCHAIN', `${compiler} does not say where it looks for headers`, {
      hint: `run ${compiler} -x${lang} -E -v /dev/null to see why`,
    });
  }
  const real = (d: string) => {
    try {
      return realpathSync(d);
    } catch {
      return d;
    }
  };
  const libc = real(join('/usr', triplet, 'include'));
  const list = dirs.bracket.map((dir): IncludeDir => {
    const at = real(dir);
    const cxx = at.startsWith(`${libc}/c++/`) ? /^[^/]+(.*)$/.exec(at.slice(`${libc}/c++/`.length)) : null;
    return { dir, libc: at === libc, ...(cxx ? { cxx: cxx[1] ?? '' } : {}) };
  });
  includes.set(key, list);
  return list;
}
