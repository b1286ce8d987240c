/**
 * What a command handler returns; `main.ts` alone turns it into bytes on stdout and an exit code, so
 * handlers stay testable and `--json` is handled in one place.
 */
export type CommandResult = DataResult | StreamResult | PassthroughResult;

export interface DataResult {
  kind: 'data';
  /** Printed as JSON with --json. */
  data: unknown;
  /** Printed otherwise: lines for a person (and for `cut -f1`-style scripts). */
  text: () => string;
  /** Non-zero when the command completed but found a problem (e.g. verify found corrupt blobs). */
  exitCode?: number;
}

export interface StreamResult {
  kind: 'stream';
  write: (out: NodeJS.WritableStream) => Promise<void>;
}

/** Another program's output and exit code, passed through unchanged (`accel cc`). */
export interface PassthroughResult {
  kind: 'passthrough';
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

export function dataResult(data: unknown, text: () => string, exitCode?: number): DataResult {
  return { kind: 'data', data, text, exitCode };
}
