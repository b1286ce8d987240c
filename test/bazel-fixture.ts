// Debian's Bazel 4 with its own C/C++ rules, offline, as the Bazel end-to-end tests and the abseil bench run it:
// the repositories it would download, as local ones; its process summary, by strategy; `accel farm config bazel`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ok, runAccel } from './helpers.ts';

/** The rules rules_cc's `cc/defs.bzl` exports for Bazel 4 (each of them one of Bazel's native rules). */
const CC_RULES = [
  'cc_binary',
  'cc_import',
  'cc_library',
  'cc_proto_library',
  'cc_test',
  'cc_toolchain',
  'cc_toolchain_suite',
  'fdo_prefetch_hints',
  'fdo_profile',
  'objc_import',
  'objc_library',
];
/** The same for rules_java's `java/defs.bzl`. */
const JAVA_RULES = [
  'java_binary',
  'java_import',
  'java_library',
  'java_lite_proto_library',
  'java_package_configuration',
  'java_plugin',
  'java_proto_library',
  'java_runtime',
  'java_test',
  'java_toolchain',
];

/** A repository whose `DIR/defs.bzl` forwards each rule to Bazel 4's native one, as rules_cc and rules_java do. */
function forwardingRepository(root: string, name: string, dir: string, rules: string[]): string {
  const repo = join(root, name);
  mkdirSync(join(repo, dir), { recursive: true });
  writeFileSync(join(repo, 'WORKSPACE'), `workspace(name = "${name}")\n`);
  writeFileSync(join(repo, 'BUILD'), '');
  writeFileSync(join(repo, dir, 'BUILD'), '');
  const defs = rules.map((rule) => `def ${rule}(**kwargs):\n    native.${rule}(**kwargs)\n`).join('\n');
  writeFileSync(join(repo, dir, 'defs.bzl'), defs);
  return `--override_repository=${name}=${repo}`;
}

/**
 * What Bazel 4 would download for C/C++ rules, made under `dir` as local repositories: rules_cc (its own cc
 * rules load it), rules_java (the JDK toolchains every build registers load it) and remote_coverage_tools
 * (cc_test names two of its targets). Returns the `--override_repository` flags that use them.
 */
export function bazel4Repositories(dir: string): string[] {
  const coverage = join(dir, 'remote_coverage_tools');
  mkdirSync(coverage, { recursive: true });
  writeFileSync(join(coverage, 'WORKSPACE'), 'workspace(name = "remote_coverage_tools")\n');
  writeFileSync(
    join(coverage, 'BUILD'),
    'package(default_visibility = ["//visibility:public"])\nfilegroup(name = "coverage_report_generator")\nfilegroup(name = "lcov_merger")\n',
  );
  return [
    forwardingRepository(dir, 'rules_cc', 'cc', CC_RULES),
    forwardingRepository(dir, 'rules_java', 'java', JAVA_RULES),
    `--override_repository=remote_coverage_tools=${coverage}`,
  ];
}

/** Bazel's "N processes: A internal, B remote, ..." line: the whole line, and the part after the colon. */
const SUMMARY = /INFO: (\d+ process(?:es)?:([^\n]*))/;

/** The process summary, or "no process summary". */
export function processSummary(stderr: string): string {
  return SUMMARY.exec(stderr)?.[1] ?? 'no process summary';
}

/** The process summary's counts by strategy: `{ internal: 9, remote: 92 }`. */
export function processCounts(stderr: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of (SUMMARY.exec(stderr)?.[2] ?? '').matchAll(/(\d+) ([a-z -]+?)(?=[,.]|$)/g)) {
    out[(m[2] as string).trim()] = Number(m[1]);
  }
  return out;
}

/** `accel --home HOME farm config bazel --reapi ENDPOINT FLAGS --write WS`, which must succeed. */
export async function farmConfigBazel(home: string, endpoint: string, ws: string, flags: string[] = []) {
  ok(await runAccel(['--home', home, 'farm', 'config', 'bazel', '--reapi', endpoint, ...flags, '--write', ws]));
}
