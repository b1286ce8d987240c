// Store throughput beside `sha256sum` + `cp` of the same data on the same disk, and ref lookups per second.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Digest, digestOf } from '../src/store/digest.ts';
import { Store } from '../src/store/store.ts';
import { fmt, medianMs, sh } from './util.ts';

const MAIN = resolve(import.meta.dirname, '..', 'src', 'main.ts');
const SMALL_COUNT = 10_000;
const SMALL_SIZE = 1024;
const LARGE_SIZE = 200 * 2 ** 20;
const LOOKUPS = 200_000;

export async function benchStore(print: (line: string) => void): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'accel-bench-'));
  try {
    const rows: string[][] = [];
    const add = (what: string, accelMs: number, peerMs: number, peer: string) =>
      rows.push([what, fmt(accelMs), fmt(peerMs), peer, fmt(accelMs / peerMs, 2)]);

    // 10,000 x 1 KB through the library (one process; a CLI per blob would measure Node start-up).
    const smallDir = join(root, 'small');
    mkdirSync(smallDir);
    const smalls = Array.from({ length: SMALL_COUNT }, () => randomBytes(SMALL_SIZE));
    for (const [i, b] of smalls.entries()) writeFileSync(join(smallDir, String(i)), b);
    let n = 0;
    const putSmall = await medianMs(3, async () => {
      const store = Store.open({ home: join(root, `home-small-${n++}`) });
      for (const b of smalls) await store.putBuffer(b);
      store.close();
    });
    const peerSmall = await medianMs(3, () =>
      sh(`cd ${smallDir} && sha256sum * > /dev/null && rm -rf ${root}/cp-small && cp -r ${smallDir} ${root}/cp-small`),
    );
    add(`put ${SMALL_COUNT} x 1 KB (library, fsync each)`, putSmall, peerSmall, 'sha256sum + cp -r');
    const store = Store.open({ home: join(root, 'home-small-0') });
    const digests = smalls.map((b) => digestOf(b));
    const getSmall = await medianMs(3, async () => {
      for (const d of digests) store.read(d);
    });
    const peerGetSmall = await medianMs(3, () =>
      sh(`cd ${root}/cp-small && sha256sum * > /dev/null && cat * > /dev/null`),
    );
    add(`get ${SMALL_COUNT} x 1 KB (library, verified)`, getSmall, peerGetSmall, 'sha256sum + cat');

    // Ref lookups: the compile cache's hot question, "is this key in the store?".
    const keys = digests.map((d, i) => `key-${i}-${d.slice(0, 8)}`);
    for (const [i, key] of keys.entries()) store.refs.set('bench', key, digests[i] as Digest);
    const start = performance.now();
    let hits = 0;
    for (let i = 0; i < LOOKUPS; i++) if (store.refs.get('bench', keys[i % keys.length] as string)) hits++;
    const lookupsPerSec = LOOKUPS / ((performance.now() - start) / 1000);
    if (hits !== LOOKUPS) throw new Error(`ref lookups missed: ${hits}/${LOOKUPS}`);
    store.close();

    // 1 x 200 MB through the CLI, start-up included, beside the shell tools doing the same work.
    const big = join(root, 'big.bin');
    sh(`head -c ${LARGE_SIZE} /dev/urandom > ${big}`);
    const accel = `"${process.execPath}" "${MAIN}"`;
    let m = 0;
    const putLarge = await medianMs(5, () =>
      sh(`${accel} --home ${root}/home-large-${m++} store put ${big} > /dev/null`),
    );
    const peerLarge = await medianMs(5, () =>
      sh(`sha256sum ${big} > /dev/null && cp ${big} ${root}/cp-large && sync -f ${root}/cp-large`),
    );
    add('put 1 x 200 MB (CLI, fsync)', putLarge, peerLarge, 'sha256sum && cp && sync -f');
    const digest = sh(`sha256sum ${big}`).slice(0, 64);
    const getLarge = await medianMs(5, () =>
      sh(`${accel} --home ${root}/home-large-0 store get ${digest} -o ${root}/out.bin`),
    );
    const peerGetLarge = await medianMs(5, () =>
      sh(`cp ${root}/cp-large ${root}/out2.bin && sha256sum ${root}/out2.bin > /dev/null && sync -f ${root}/out2.bin`),
    );
    add('get 1 x 200 MB -o FILE (CLI, verified, fsync)', getLarge, peerGetLarge, 'cp && sha256sum && sync -f');
    const nodeStart = await medianMs(5, () => sh(`"${process.execPath}" -e 0`));

    print('## Store (`bench/store.ts`)\n');
    print(
      `Data on ${sh(`df --output=source,fstype ${root} | tail -1`).trim()}; median of 3 (small) or 5 (large) runs.\n`,
    );
    print('| operation | accel ms | peer ms | peer | ratio |');
    print('| --- | ---: | ---: | --- | ---: |');
    for (const r of rows) print(`| ${r.join(' | ')} |`);
    print('');
    print(
      `- ref lookups: ${Math.round(lookupsPerSec).toLocaleString('en')} per second (${LOOKUPS} lookups over ${keys.length} refs)`,
    );
    print(`- \`node -e 0\` start-up on the same Node: ${fmt(nodeStart)} ms (part of every CLI figure above)`);
    print(
      `- 200 MB put: ${fmt(LARGE_SIZE / 2 ** 20 / (putLarge / 1000), 0)} MB/s; get: ${fmt(LARGE_SIZE / 2 ** 20 / (getLarge / 1000), 0)} MB/s`,
    );
    print('');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
