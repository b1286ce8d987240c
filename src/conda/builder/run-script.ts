import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync } from 'node:fs';

/** Runs `bash -e <script>` with its output appended to `log`; resolves with the exit code. */
export function runScript(script: string, options: { cwd: string; env: Record<string, string>; log: string }) {
  const fd = openSync(options.log, 'a');
  return new Promise<number>((resolve, reject) => {
    const child = spawn('bash', ['-e', script], { cwd: options.cwd, env: options.env, stdio: ['ignore', fd, fd] });
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

export function logLine(log: string, line: string): void {
  appendFileSync(log, `${line}\n`);
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
