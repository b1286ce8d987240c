// `npm run bench`: runs every benchmark and prints Markdown for docs/benchmarks.md.
import { benchApt } from './apt.ts';
import { benchCc } from './cc.ts';
import { benchConda } from './conda.ts';
import { benchCondaRender } from './conda-render.ts';
import { benchCondaPkg } from './condapkg.ts';
import { benchFarm } from './farm.ts';
import { benchFarmPolicy } from './farm-policy.ts';
import { benchMirror, benchMirrorVerify } from './mirror.ts';
import { benchStartup } from './startup.ts';
import { benchStore } from './store.ts';
import { benchStoreMonth } from './store-month.ts';

const started = new Date().toISOString();
process.stdout.write(`# accel benchmarks (${started}, \`npm run bench\`)\n\n`);
const print = (line: string) => process.stdout.write(`${line}\n`);
const only = process.argv[2];
if (!only || only === 'store') await benchStore(print);
if (!only || only === 'store' || only === 'store-month') await benchStoreMonth(print);
if (!only || only === 'startup') await benchStartup(print);
if (!only || only === 'mirror') await benchMirror(print);
if (only === 'mirror-verify') await benchMirrorVerify(print);
if (!only || only === 'apt') await benchApt(print);
if (!only || only === 'cc') await benchCc(print);
if (!only || only === 'farm') await benchFarm(print);
if (only === 'farm-policy') await benchFarmPolicy(print);
if (!only || only === 'conda-render') await benchCondaRender(print);
if (!only || only === 'conda') await benchConda(print);
if (!only || only === 'condapkg') await benchCondaPkg(print);
