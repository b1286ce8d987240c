// `node bench/upstream-fixtures.ts DIR`: writes a conda channel into DIR holding fixture packages that stand in
// for conda-forge's where the feedstock check needs one and this machine cannot reach conda-forge (issue 31):
//   ca-certificates      the machine's CA bundle as ssl/cacert.pem, and ssl/cert.pem linking to it (the default CA
//                        file of an openssl built with --prefix=$PREFIX); openssl depends on it at run time
//   cmake-package-check  a POSIX shell version of conda-forge's Python tool (jsoncpp's test runs it)
// Each has build string `accel_fixture_0` and says in its summary that it is a fixture. bench/upstream-gtest.ts
// adds gtest and gmock (Debian's googletest 1.12.1, numbered for snappy's 1.13 pin, and saying so) to the same
// channel. Serve DIR with `accel mirror serve` (mirror.condaChannels) and pass its URL to
// `npm run check:feedstocks -- --upstream-channel URL`.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { addToChannel } from '../src/conda/pkg/channel-index.ts';
import { writeCondaPackage } from '../src/conda/pkg/write.ts';

const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/**
 * `cmake-package-check <Package>... [--targets <target>...] [--disable-double-find]`: configures a throwaway
 * CMake project that calls find_package(<Package> REQUIRED) (twice, as the original does, to catch configs that
 * break when loaded again) and links a dummy executable to each target, with the machine's cmake and the test
 * environment's compilers. Only $PREFIX is searched (find root path ONLY): a package the machine has in /usr
 * must not make the check pass.
 */
const CMAKE_PACKAGE_CHECK = `#!/bin/sh
# accel test fixture standing in for conda-forge's cmake-package-check (a Python CLI): same arguments, same
# exit status, configure only.
set -u
usage() {
  echo "usage: cmake-package-check <Package>... [--targets <target>...] [--disable-double-find]" >&2
  exit 2
}
packages=
targets=
twice=1
into=packages
for a in "$@"; do
  case "$a" in
    --targets) into=targets ;;
    --disable-double-find) twice=0 ;;
    -h | --help) usage ;;
    -*) echo "cmake-package-check: unknown option $a" >&2; usage ;;
    *) if [ "$into" = targets ]; then targets="$targets $a"; else packages="$packages $a"; fi ;;
  esac
done
[ -n "$packages" ] || usage
prefix=\${PREFIX:-\${CONDA_PREFIX:-}}
if [ -z "$prefix" ]; then
  echo "cmake-package-check: neither PREFIX nor CONDA_PREFIX is set" >&2
  exit 2
fi
dir=$(mktemp -d "\${TMPDIR:-/tmp}/cmake-package-check.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
{
  echo 'cmake_minimum_required(VERSION 3.12)'
  echo 'project(cmake_package_check C CXX)'
  for p in $packages; do
    echo "find_package($p REQUIRED)"
    if [ "$twice" = 1 ]; then echo "find_package($p REQUIRED)"; fi
  done
  echo 'file(WRITE \${CMAKE_CURRENT_BINARY_DIR}/check.cpp "int main() { return 0; }")'
  echo 'add_executable(check \${CMAKE_CURRENT_BINARY_DIR}/check.cpp)'
  for t in $targets; do
    echo "if(NOT TARGET $t)"
    echo "  message(FATAL_ERROR \\"cmake-package-check: $t is not a target\\")"
    echo "endif()"
    echo "target_link_libraries(check PRIVATE $t)"
  done
} >"$dir/CMakeLists.txt"
cat "$dir/CMakeLists.txt"
set -- -S "$dir" -B "$dir/build" \\
  "-DCMAKE_PREFIX_PATH=$prefix" "-DCMAKE_FIND_ROOT_PATH=$prefix" \\
  -DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=ONLY -DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY \\
  -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY -DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER
if [ -n "\${CC:-}" ]; then set -- "$@" "-DCMAKE_C_COMPILER=$CC"; fi
if [ -n "\${CXX:-}" ]; then set -- "$@" "-DCMAKE_CXX_COMPILER=$CXX"; fi
# A cross test environment: CMake must know the target, or it takes the target's libraries for the machine's.
if [ "\${CONDA_BUILD_CROSS_COMPILATION:-}" = 1 ] && [ -n "\${target_platform:-}" ]; then
  cpu=\${target_platform#*-}
  if [ "$cpu" = 64 ]; then cpu=x86_64; fi
  set -- "$@" -DCMAKE_SYSTEM_NAME=Linux "-DCMAKE_SYSTEM_PROCESSOR=$cpu"
fi
if cmake "$@"; then
  echo "cmake-package-check:$packages found"
  exit 0
fi
echo "cmake-package-check:$packages not found (or a target missing) in $prefix" >&2
exit 1
`;

interface Fixture {
  name: string;
  version: string;
  /** A file's content, or the target of a symlink. */
  files: Record<string, { data: Buffer | string; mode?: number } | { link: string }>;
  summary: string;
}

/** The machine's ca-certificates as conda-forge numbers it (Debian's 20230311+deb12u1 → 2023.03.11). */
function caVersion(): string {
  const r = spawnSync('dpkg-query', ['-W', 'ca-certificates'], { encoding: 'utf8' });
  const m = /\t(\d{4})(\d{2})(\d{2})/.exec(r.stdout ?? '');
  return m ? `${m[1]}.${m[2]}.${m[3]}` : '0.0.0';
}

function fixtures(): Fixture[] {
  return [
    {
      name: 'ca-certificates',
      version: caVersion(),
      files: { 'ssl/cacert.pem': { data: readFileSync(CA_BUNDLE) }, 'ssl/cert.pem': { link: 'cacert.pem' } },
      summary: `accel test fixture standing in for conda-forge's ca-certificates: this machine's ${CA_BUNDLE}`,
    },
    {
      name: 'cmake-package-check',
      version: '0.1.0',
      files: { 'bin/cmake-package-check': { data: CMAKE_PACKAGE_CHECK, mode: 0o755 } },
      summary:
        "accel test fixture standing in for conda-forge's cmake-package-check: a POSIX shell version, run with the machine's cmake",
    },
  ];
}

/** Packs one fixture (noarch generic, no dependencies) and adds it to the channel. */
async function addFixture(channel: string, work: string, f: Fixture): Promise<string> {
  const prefix = join(work, f.name);
  for (const [rel, file] of Object.entries(f.files)) {
    mkdirSync(join(prefix, rel, '..'), { recursive: true });
    if ('link' in file) {
      symlinkSync(file.link, join(prefix, rel));
      continue;
    }
    writeFileSync(join(prefix, rel), file.data);
    if (file.mode) chmodSync(join(prefix, rel), file.mode);
  }
  const pkg = await writeCondaPackage({
    prefix,
    files: Object.keys(f.files),
    index: {
      name: f.name,
      version: f.version,
      build: 'accel_fixture_0',
      build_number: 0,
      subdir: 'noarch',
      noarch: 'generic',
      depends: [],
      timestamp: 0,
      license: 'LicenseRef-accel-test-fixture',
    },
    about: { summary: f.summary },
    placeholder: prefix,
    outDir: join(work, 'out'),
  });
  return (await addToChannel(channel, pkg.path)).path;
}

const dir = process.argv[2];
if (!dir || process.argv.length > 3) {
  process.stderr.write('usage: node bench/upstream-fixtures.ts DIR\n');
  process.exit(2);
}
const channel = resolve(dir);
const work = mkdtempSync(join(tmpdir(), 'accel-upstream-fixtures-'));
try {
  for (const f of fixtures()) process.stdout.write(`${await addFixture(channel, work, f)}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.stdout.write(
  [
    '',
    `channel: ${channel}`,
    'serve it through accel mirror: an ACCEL_HOME whose config.json says',
    `  {"mirror": {"condaChannels": {"fixtures": ${JSON.stringify(channel)}}}}`,
    'then `node src/main.ts --home HOME mirror serve --port 0`; the channel URL is',
    '  http://127.0.0.1:PORT/conda/fixtures   (npm run check:feedstocks -- --upstream-channel URL)',
    '',
  ].join('\n'),
);
