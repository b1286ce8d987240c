import { createReadStream, type Stats } from 'node:fs';
import { type FileHandle, open, realpath } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { errnoCode } from '../core/errors.ts';
import type { MirrorContext } from './context.ts';
import { parseRange } from './respond.ts';

/**
 * Local conda channels, read-only: `/conda/<name>/<subdir>/<file>` serves a file of the directory that
 * config `mirror.condaChannels` names. conda, mamba, pixi and rattler use it as a channel URL
 * (`http://host:8000/conda/<name>`). Indexes are revalidated often; packages never change under one name.
 */
export const CONDA_PREFIX = '/conda/';

/** repodata.json and friends: clients revalidate after this many seconds. */
const INDEX_MAX_AGE = 30;
const PACKAGE_CACHE = 'public, max-age=31536000, immutable';

export function isCondaPath(raw: string): boolean {
  return raw.startsWith(CONDA_PREFIX);
}

export async function handleCondaRequest(ctx: MirrorContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '';
  const segments = decodeSegments(path.slice(CONDA_PREFIX.length));
  if (!segments) return sendError(ctx, res, 400, 'bad conda channel path: no "..", ".", empty or hidden segments');
  const [name = '', ...rest] = segments;
  const dir = Object.hasOwn(ctx.condaChannels, name) ? ctx.condaChannels[name] : undefined;
  if (dir === undefined)
    return sendError(ctx, res, 404, `no conda channel named '${name}' (config mirror.condaChannels)`);
  if (rest.length === 0) return sendError(ctx, res, 404, `use /conda/${name}/<subdir>/<file>`);
  const opened = await openInside(dir, rest);
  if (!opened) return sendError(ctx, res, 404, `not in conda channel '${name}': ${rest.join('/')}`);
  const { fh, stat, file } = opened;
  try {
    await serveFile(ctx, req, res, fh, stat, file);
  } finally {
    await fh.close();
  }
}

/** Path segments, percent-decoded, or undefined when any could step outside the channel or is hidden. */
function decodeSegments(raw: string): string[] | undefined {
  const out: string[] = [];
  for (const segment of raw.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return undefined;
    }
    if (decoded === '' || decoded.startsWith('.') || /[/\\\0]/.test(decoded)) return undefined;
    out.push(decoded);
  }
  return out;
}

/**
 * Opens a regular file under the channel directory, resolving symlinks first: a link that leads outside
 * the channel is treated as absent. The handle is what gets served, so a later swap of the path cannot
 * redirect the read.
 */
async function openInside(
  dir: string,
  rest: string[],
): Promise<{ fh: FileHandle; stat: Stats; file: string } | undefined> {
  try {
    const root = await realpath(dir);
    const file = await realpath(join(root, ...rest));
    if (!file.startsWith(root + sep)) return undefined;
    const fh = await open(file, 'r');
    const stat = await fh.stat();
    if (!stat.isFile()) {
      await fh.close();
      return undefined;
    }
    return { fh, stat, file };
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES' || code === 'ELOOP') return undefined;
    throw err;
  }
}

async function serveFile(
  ctx: MirrorContext,
  req: IncomingMessage,
  res: ServerResponse,
  fh: FileHandle,
  stat: Stats,
  file: string,
): Promise<void> {
  const isPackage = file.endsWith('.conda') || file.endsWith('.tar.bz2');
  const etag = `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
  const headers: Record<string, string | number> = {
    'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
    'cache-control': isPackage ? PACKAGE_CACHE : `public, max-age=${INDEX_MAX_AGE}`,
    'accept-ranges': 'bytes',
    etag,
    'last-modified': stat.mtime.toUTCString(),
  };
  if (notModified(req, etag, stat)) {
    res.writeHead(304, headers).end();
    return;
  }
  const range = parseRange(req.headers.range, stat.size);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${stat.size}` }).end();
    return;
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : stat.size - 1;
  const length = stat.size === 0 ? 0 : end - start + 1;
  if (range) {
    res.writeHead(206, { ...headers, 'content-length': length, 'content-range': `bytes ${start}-${end}/${stat.size}` });
  } else res.writeHead(200, { ...headers, 'content-length': length });
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return;
  }
  const source = createReadStream('', { fd: fh, start, end, autoClose: false, highWaterMark: 1 << 20 });
  source.on('data', (chunk) => {
    ctx.stats.bytesServed += chunk.length;
  });
  // A read error or a client that left breaks the connection: never a short body that looks complete.
  await pipeline(source, res).catch(() => res.destroy());
}

function notModified(req: IncomingMessage, etag: string, stat: Stats): boolean {
  const match = req.headers['if-none-match'];
  if (match !== undefined) return match.split(',').some((t) => t.trim() === etag || t.trim() === '*');
  const since = req.headers['if-modified-since'];
  if (since === undefined) return false;
  const time = Date.parse(since);
  return !Number.isNaN(time) && Math.floor(stat.mtimeMs / 1000) * 1000 <= time;
}

function sendError(ctx: MirrorContext, res: ServerResponse, status: number, message: string): void {
  ctx.stats.errors++;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(`${message}\n`);
}
