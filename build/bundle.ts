// The one esbuild bundle of accel: the executable embeds it (build/build.ts), and benchmarks that want the
// executable's start-up without building it run it directly.
import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..');

export function bundleAccel(outfile: string): void {
  buildSync({
    entryPoints: [join(ROOT, 'src', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    minify: true,
    keepNames: true,
    legalComments: 'none',
    logLevel: 'warning',
    // import.meta.url is only read when running from source (native.ts), never inside the executable.
    logOverride: { 'empty-import-meta': 'silent' },
  });
}
