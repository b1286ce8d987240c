import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync } from 'node:fs';

/**
 * Runs `bash -e <script>` with its output appended to `log`; resolves with the exit code. `wrap` is a command
 * prefix the shell runs under (the private binfmt_misc namespace that runs the target's programs).
 */
export function runScript(
  script: string,
  options: { cwd: string; env: Record<string, string>; log: string; wrap?: string[] | null },
) {
  const fd = openSync(options.log, 'a');
  const argv = [...(options.wrap ?? []), 'bash', '-e', script];
  return new Promise<number>((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', fd, fd],
    });
    child.on('error', (err) => {
      closeSync(fd);
      reject(err);
    });
    child.on('close', (code, signal) => {
      closeSync(fd);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

/** Whether the log shows the build running a program of the wrong architecture (no emulation for it). */
export function ranForeignProgram(log: string): boolean {
  try {
    return /Exec format error|cannot execute binary file/.test(readFileSync(log, 'utf8'));
  } catch {
    return false;
  }
}

export function logLine(log: string, line: string): void {
  appendFileSync(log, `${line}\n`);
}

/**
 * The last line of a log's end that reads as an error (`config.status: error: cannot find input file`,
 * `foo.c:3: error: …`, `make: *** … Error 2` only when nothing better is there): the cause in one line.
 */
export function lastErrorLine(log: string): string | undefined {
  const lines = logTail(log, 200).split('\n');
  const pick = (re: RegExp) => lines.findLast((l) => re.test(l) && !/^\+ /.test(l));
  const line = pick(/\berror\b|\bfatal\b|No such file|not found|cannot |Exec format error/i) ?? pick(/\*\*\*/);
  return line?.trim().slice(0, 300);
}

/** The last lines of a log, for the error a failed build shows. */
export function logTail(log: string, lines = 25): string {
  try {
    const all = readFileSync(log, 'utf8').trimEnd().split('\n');
    return all.slice(-lines).join('\n');
  } catch {
    return '';
  }
}
