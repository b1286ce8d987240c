import { appendFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { makeDirs } from '../core/dirs.ts';
import { AccelError, fsError, isAccelError } from '../core/errors.ts';
import { homeLayout } from '../core/home-layout.ts';

/** The file a build's miss explanations are appended to. */
export type ExplainTo = string;

/**
 * Where `ACCEL_CC_EXPLAIN` (or `cc.explain`) sends explanations: off for empty, `0`, `false` or `no`;
 * `run/cc-explain.log` under the home for `1`, `true` or `yes`; otherwise the named file (relative to the
 * compile's directory).
 */
export function explainTarget(value: string | undefined, home: string, cwd: string): ExplainTo | undefined {
  if (value === undefined || /^(|0|false|no)$/i.test(value.trim())) return undefined;
  if (/^(1|true|yes)$/i.test(value.trim())) return homeLayout(home).run.ccExplainLog;
  return resolve(cwd, value);
}

/**
 * Appends one line: time, directory, source, and why it missed. One `write` with O_APPEND per line, so the
 * lines of parallel compiles do not interleave. A file that cannot be written stops the compile with the
 * file system's error: explaining was asked for, and a silent gap would mislead.
 */
export function writeExplanation(to: ExplainTo, what: { cwd: string; source: string; why: string }): void {
  const line = `${new Date().toISOString()} miss ${what.cwd} ${what.source}: ${what.why}\n`;
  try {
    makeDirs(dirname(to), { mode: 0o700 });
    appendFileSync(to, line, { mode: 0o600 });
  } catch (err) {
    const known = fsError(err, 'writing the miss explanations to', to);
    if (isAccelError(known)) throw known;
    throw new AccelError(
      'ACCEL_CC_EXPLAIN_UNWRITABLE',
      `cannot append miss explanations to ${to}: ${(err as Error).message}`,
      {
        hint: 'set ACCEL_CC_EXPLAIN to a file in a writable directory, or to 1 for run/cc-explain.log under the accel home',
        cause: err,
      },
    );
  }
}
