// Packing a 50 MB prefix into a .conda, beside `tar | zstd` of the same files; check, install and index times.
// Run: node bench/condapkg.ts   (prints Markdown for docs/benchmarks.md)
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addToChannel } from '../src/conda/pkg/channel-index.ts';
import { installCondaPackage } from '../src/conda/pkg/install.ts';
import { checkCondaPackage } from '../src/conda/pkg/read.ts';
import { writeCondaPackage } from '../src/conda/pkg/write.ts';
import { fmt, medianMs, sh } from './util.ts';

const MB = 2 ** 20;

/** Deterministic bytes: a hash chain, so every run packs the same content. */
function noise(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** 25 MB of source-like text (some naming the prefix) and 25 MB of half-compressible binaries. */
function fillPrefix(prefix: string): string[] {
  const files: string[] = [];
  for (let i = 0; i < 50; i++) {
    const rel = `include/foo/header_${i}.h`;
    const lines: string[] = [];
    for (let n = 0, length = 0; length < MB / 2 - 400; n++) {
      const line =
        n % 500 === 0
          ? `#define FOO_PREFIX "${prefix}"`
          : `#define FOO_${i}_${n} ${n * 7919} /* ${noise(`${i}-${n}`, 12).toString('hex')} */`;
      lines.push(line);
      length += line.length + 1;
    }
    mkdirSync(join(prefix, 'include/foo'), { recursive: true });
    writeFileSync(join(prefix, rel), lines.join('\n'));
    files.push(rel);
  }
  mkdirSync(join(prefix, 'lib'), { recursive: true });
  for (let i = 0; i < 25; i++) {
    const rel = `lib/libfoo_${i}.so`;
    const half = noise(`bin-${i}`, MB / 2);
    writeFileSync(join(prefix, rel), Buffer.concat([half, Buffer.from(`${prefix}/lib\0`), Buffer.alloc(MB / 2 - 300)]));
    files.push(rel);
  }
  return files;
}

export async function benchCondaPkg(print: (line: string) => void): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'accel-bench-conda-'));
  try {
    const prefix = join(root, `build_env${'_placehold'.repeat(20)}`);
    const files = fillPrefix(prefix);
    const bytes = Number(sh(`du -sb ${prefix} | cut -f1`).trim());
    const index = { name: 'foo', version: '1.0', build: '0', build_number: 0, subdir: 'linux-aarch64', timestamp: 0 };
    const rows: string[][] = [];
    let out = '';
    for (const level of [16, 6]) {
      let n = 0;
      const ms = await medianMs(3, async () => {
        const written = await writeCondaPackage({
          prefix,
          files,
          placeholder: prefix,
          outDir: join(root, `out-${level}-${n++}`),
          index,
          level,
        });
        out = written.path;
      });
      const size = statSync(out).size;
      const peer = await medianMs(3, () =>
        sh(`tar -C ${prefix} -cf - . | zstd -q -${level} -T1 > ${root}/peer.tar.zst`),
      );
      const peerSize = statSync(`${root}/peer.tar.zst`).size;
      process.stderr.write(`level ${level}: ${fmt(ms, 0)} ms, peer ${fmt(peer, 0)} ms\n`);
      rows.push([
        `pack, zstd -${level}`,
        fmt(ms, 0),
        fmt(peer, 0),
        fmt(ms / peer, 2),
        `${fmt(size / MB, 2)} MB`,
        `${fmt(peerSize / MB, 2)} MB`,
      ]);
    }
    const check = await medianMs(3, () => checkCondaPackage(out));
    let k = 0;
    const install = await medianMs(3, () => installCondaPackage(out, join(root, `env-${k++}`)));
    const peerInstall = await medianMs(3, () =>
      sh(`rm -rf ${root}/x && mkdir ${root}/x && cd ${root}/x && unzip -q ${out} && zstd -dcq pkg-*.tar.zst | tar -x`),
    );
    const channel = join(root, 'channel');
    const index1 = await medianMs(1, () => addToChannel(channel, out));
    print('## conda packages (`bench/condapkg.ts`)');
    print('');
    print(`${files.length} files, ${fmt(bytes / MB, 1)} MB in the prefix; median of 3 runs; peer single-threaded.`);
    print('');
    print('| operation | accel ms | peer ms | ratio | accel output | peer output |');
    print('| --- | ---: | ---: | ---: | ---: | ---: |');
    print('|  | | `tar -cf - . \\| zstd -N -T1` | | .conda | .tar.zst |');
    for (const row of rows) print(`| ${row.join(' | ')} |`);
    print('');
    print(`- check (read, decompress, hash every file; zstd -6 package, the default): ${fmt(check, 0)} ms`);
    print(
      `- install into a fresh prefix (verify, relocate 75 files, stage, rename): ${fmt(install, 0)} ms; ` +
        `\`unzip && zstd -d | tar -x\` of the same: ${fmt(peerInstall, 0)} ms`,
    );
    print(`- addToChannel (check, copy, index one subdir): ${fmt(index1, 0)} ms`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
