// `npm run bench`: runs every benchmark and prints Markdown for docs/benchmarks.md.
import { benchStore } from './store.ts';

const started = new Date().toISOString();
process.stdout.write(`# accel benchmarks (${started}, \`npm run bench\`)\n\n`);
await benchStore((line) => process.stdout.write(`${line}\n`));
