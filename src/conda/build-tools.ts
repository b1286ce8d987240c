/**
 * Build-machine tools: conda-forge ships them as packages in a recipe's `build:` requirements, but they run on
 * the machine that builds, so a cross build takes them from that machine (Debian's packages) instead. They are
 * never edges of the feedstock graph: make-feedstock is not a prerequisite of every autotools recipe, and a
 * build-side python is not the host python a feedstock provides.
 *
 * Each entry: the command that must be on PATH (or a file that must exist, for data-only packages such as
 * gnuconfig) and the Debian package that provides it.
 */
interface MachineTool {
  /** A command looked up on PATH, or an absolute path that must exist. */
  probe: string;
  apt: string;
  /**
   * Commands conda-forge's package puts into $BUILD_PREFIX/bin that recipes call by that path
   * (`${BUILD_PREFIX}/bin/install`): linked there to the machine's, `as` → `from` where the names differ.
   */
  commands?: Record<string, string>;
}

const tool = (probe: string, apt = probe, commands?: Record<string, string>): MachineTool => ({
  probe,
  apt,
  ...(commands ? { commands } : {}),
});
const same = (...names: string[]) => Object.fromEntries(names.map((n) => [n, n]));

export const MACHINE_TOOLS: Readonly<Record<string, MachineTool>> = {
  make: tool('make'),
  cmake: tool('cmake'),
  'cmake-no-system': tool('cmake'),
  ninja: tool('ninja', 'ninja-build'),
  meson: tool('meson'),
  'pkg-config': tool('pkg-config', 'pkgconf'),
  pkg_config: tool('pkg-config', 'pkgconf'),
  ripgrep: tool('rg', 'ripgrep'),
  pkgconf: tool('pkgconf'),
  patch: tool('patch'),
  m4: tool('m4'),
  bison: tool('bison'),
  flex: tool('flex'),
  libtool: tool('libtoolize', 'libtool', same('libtool', 'libtoolize')),
  autoconf: tool('autoconf', 'autoconf', same('autoconf', 'autoreconf', 'autoheader', 'autom4te')),
  automake: tool('automake', 'automake', same('automake', 'aclocal')),
  'autoconf-archive': tool('/usr/share/aclocal/ax_check_compile_flag.m4', 'autoconf-archive'),
  gettext: tool('msgfmt', 'gettext'),
  texinfo: tool('makeinfo', 'texinfo'),
  help2man: tool('help2man'),
  perl: tool('perl', 'perl'),
  python: tool('python3', 'python3', { python: 'python3', python3: 'python3' }),
  gnuconfig: tool('/usr/share/misc/config.guess', 'autotools-dev'),
  diffutils: tool('diff', 'diffutils', same('diff', 'cmp', 'diff3', 'sdiff')),
  coreutils: tool(
    'ls',
    'coreutils',
    same(
      'install',
      'ls',
      'cp',
      'mv',
      'rm',
      'mkdir',
      'rmdir',
      'ln',
      'cat',
      'chmod',
      'touch',
      'date',
      'env',
      'head',
      'tail',
      'sort',
      'tr',
      'uname',
      'dirname',
      'basename',
      'readlink',
      'realpath',
      'wc',
      'cut',
      'printf',
      'echo',
      'expr',
      'md5sum',
      'sha256sum',
      'nproc',
      'tee',
      'true',
      'false',
      'seq',
      'stat',
      'uniq',
      'od',
      'sleep',
      'mktemp',
    ),
  ),
  sed: tool('sed'),
  grep: tool('grep'),
  gawk: tool('gawk'),
  findutils: tool('find', 'findutils'),
  tar: tool('tar'),
  gzip: tool('gzip'),
  bzip2: tool('bzip2'),
  xz: tool('xz', 'xz-utils'),
  zstd: tool('zstd'),
  unzip: tool('unzip'),
  git: tool('git'),
  nasm: tool('nasm'),
  yasm: tool('yasm'),
  swig: tool('swig'),
  doxygen: tool('doxygen'),
  gperf: tool('gperf'),
  'gnu-efi': tool('/usr/include/efi/efi.h', 'gnu-efi'),
};

/**
 * Names that are the compiler toolchain's runtime: conda-forge's compiler packages export them to every
 * package they build, and a cross build takes them from the toolchain (its libgcc_s and libstdc++), not from a
 * feedstock of the set.
 */
export const TOOLCHAIN_RUNTIME: ReadonlySet<string> = new Set([
  'libgcc',
  'libgcc-ng',
  'libstdcxx',
  'libstdcxx-ng',
  'libgomp',
  '__glibc',
]);

/** Whether a build requirement is a machine tool (never a package of the channel nor a graph edge). */
export function isMachineTool(name: string): boolean {
  return Object.hasOwn(MACHINE_TOOLS, name);
}

/** conda-forge's compiler and stdlib packages are named `<compiler>_<subdir>` (`gcc_linux-aarch64`). */
export function isCompilerPackage(name: string): boolean {
  return /_(linux|osx|win)-[a-z0-9]+$/.test(name);
}
