// Runs every worked example of README.md and docs/*.md that is marked runnable, as a reader would paste it:
// a fence opened with "```sh runnable" (optionally "needs=tool,tool" for the system tools it runs) is run by
// bash with -euo pipefail from the repository root, with `accel` on PATH and a home of its own. Background
// processes it starts are killed when it ends. Examples that need the internet are not marked runnable.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { needsTools, ROOT, tempDir } from '../helpers.ts';

interface Example {
  file: string;
  line: number;
  script: string;
  needs: string[];
}

export function runnableExamples(text: string, file: string): Example[] {
  const examples: Example[] = [];
  const fence = /^```sh runnable(?: needs=([\w,+.-]+))?\n([\s\S]*?)^```$/gm;
  for (const m of text.matchAll(fence)) {
    const line = text.slice(0, m.index).split('\n').length;
    examples.push({ file, line, script: m[2] as string, needs: m[1] ? m[1].split(',') : [] });
  }
  return examples;
}

const files = ['README.md', ...readdirSync(join(ROOT, 'docs')).map((f) => join('docs', f))].filter((f) =>
  f.endsWith('.md'),
);
const examples = files.flatMap((f) => runnableExamples(readFileSync(join(ROOT, f), 'utf8'), f));

/** `accel` as users run it: the built executable when there is one, else the sources on the project's Node. */
function accelBin(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const exe = join(ROOT, 'build', 'out', 'accel-linux-x64');
  const node = join(ROOT, 'node_modules', '.bin', 'node');
  const target = existsSync(exe) ? `exec ${exe} "$@"` : `exec ${node} ${join(ROOT, 'src', 'main.ts')} "$@"`;
  writeFileSync(join(bin, 'accel'), `#!/bin/sh\n${target}\n`);
  chmodSync(join(bin, 'accel'), 0o755);
  return bin;
}

test('the docs mark their local worked examples runnable', () => {
  const marked = new Set(examples.map((e) => e.file));
  for (const f of [
    'docs/cli.md',
    'docs/configuration.md',
    'docs/store.md',
    'docs/cc.md',
    'docs/farm.md',
    'docs/mirror.md',
  ]) {
    assert.ok(marked.has(f), `${f} has a runnable example`);
  }
});

for (const example of examples) {
  const name = `${example.file}:${example.line} runs as pasted`;
  test(name, { ...needsTools('bash', ...example.needs), timeout: 300_000 }, async (t) => {
    const dir = tempDir(t, 'accel-docs-');
    chmodSync(dir, 0o755);
    const home = join(dir, 'home');
    mkdirSync(home);
    const env: NodeJS.ProcessEnv = {
      PATH: `${accelBin(dir)}:${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH}`,
      HOME: home,
      TMPDIR: dir,
      LANG: 'C.UTF-8',
    };
    const child = spawn('bash', ['-euo', 'pipefail', '-c', example.script], {
      cwd: ROOT,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Whatever the example left running in the background (a mirror, a syncer) goes with it, also when the
    // test times out; until then it holds the output pipes open.
    const killGroup = () => {
      try {
        process.kill(-(child.pid as number), 'SIGTERM');
      } catch {}
    };
    t.after(killGroup);
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    killGroup();
    await closed;
    assert.equal(code, 0, `${example.file}:${example.line} failed (exit ${code}):\n${output.slice(-6000)}`);
  });
}
