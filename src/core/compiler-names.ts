/**
 * The compiler names accel takes as compilers by default: the links of the masquerade directory, and the
 * farm's `compilers` setting (what a worker runs and the syncer accepts, with GNU cross compilers of them).
 */
export const COMPILER_NAMES: readonly string[] = ['gcc', 'g++', 'cc', 'c++', 'clang', 'clang++'];
