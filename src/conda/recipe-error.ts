import { AccelError } from '../core/errors.ts';

/** Where a recipe problem is: the file and the 1-based line in it. */
export interface SourcePos {
  file: string;
  line: number;
}

/**
 * A user error in a recipe or variant file. The message always starts with `file:line:` so that editors and
 * people jump straight to it; the code names what kind of problem it is (`ACCEL_CONDA_<WHAT>`).
 */
export function recipeError(what: string, pos: SourcePos, message: string, hint?: string): AccelError {
  return new AccelError(`ACCEL_CONDA_${what}`, `${pos.file}:${pos.line}: ${message}`, { hint });
}
