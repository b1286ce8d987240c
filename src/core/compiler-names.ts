/**
 * The compiler names accel takes as compilers by default: the links of the masquerade directory, and the
 * farm's `compilers` setting (what a worker runs and the syncer accepts, with GNU cross compilers of them).
 * `clang-cl` is the MSVC driver (compiler/msvc.ts reads its arguments); cl.exe needs Windows, which accel
 * does not run on yet.
 */
export const COMPILER_NAMES: readonly string[] = ['gcc', 'g++', 'cc', 'c++', 'clang', 'clang++', 'clang-cl'];
