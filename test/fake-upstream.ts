import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** How the fake upstream answers one path; it can misbehave the ways real upstreams do. */
export interface FakeFile {
  body: Buffer;
  etag?: string;
  lastModified?: string;
  contentType?: string;
  /** Honour Range requests (and say so). */
  ranges?: boolean;
  /** Answer with this status and no body. */
  status?: number;
  /** Answer 302 (or `status`) with this Location. */
  redirect?: string;
  /** Send this many bytes of the body, then cut the connection (once, unless `truncateAlways`). */
  truncateAt?: number;
  truncateAlways?: boolean;
  /** Send this many bytes, then wait for `release()` before sending the rest. */
  pauseAt?: number;
  /** Send the head and this many bytes, then go silent forever. */
  stallAt?: number;
}

export interface FakeUpstream {
  port: number;
  origin: string;
  files: Map<string, FakeFile>;
  /** Every request received, in order: path, headers. */
  requests: { path: string; headers: IncomingMessage['headers'] }[];
  count(path: string): number;
  release(): void;
  close(): Promise<void>;
}

export async function startFakeUpstream(): Promise<FakeUpstream> {
  const files = new Map<string, FakeFile>();
  const requests: FakeUpstream['requests'] = [];
  const sockets = new Set<Socket>();
  let releasers: (() => void)[] = [];
  const truncatedOnce = new Set<string>();

  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push({ path, headers: req.headers });
    const file = files.get(path);
    if (!file) return void res.writeHead(404).end('not found');
    if (file.redirect) return void res.writeHead(file.status ?? 302, { location: file.redirect }).end();
    if (file.status) return void res.writeHead(file.status).end(`status ${file.status}`);
    const headers: Record<string, string | number> = { 'content-type': file.contentType ?? 'application/octet-stream' };
    if (file.etag) headers.etag = file.etag;
    if (file.lastModified) headers['last-modified'] = file.lastModified;
    if (file.ranges) headers['accept-ranges'] = 'bytes';
    if (file.etag && req.headers['if-none-match'] === file.etag) return void res.writeHead(304, headers).end();
    let body = file.body;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (file.ranges && range) {
      const start = Number(range[1]);
      headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
      body = body.subarray(start);
      status = 206;
    }
    headers['content-length'] = body.length;
    res.writeHead(status, headers);
    void send(path, file, body, res);
  });

  async function send(path: string, file: FakeFile, body: Buffer, res: ServerResponse): Promise<void> {
    const cut = file.truncateAt !== undefined && (file.truncateAlways || !truncatedOnce.has(path)) && status200(res);
    if (cut && file.truncateAt !== undefined) {
      truncatedOnce.add(path);
      // Close with end() once the partial body is flushed, not destroy(): destroy can drop bytes still queued,
      // and the break must come exactly at truncateAt.
      await new Promise<void>((resolve) => res.write(body.subarray(0, file.truncateAt), () => resolve()));
      res.socket?.end();
      return;
    }
    if (file.stallAt !== undefined) {
      res.write(body.subarray(0, file.stallAt));
      return; // never another byte
    }
    if (file.pauseAt !== undefined) {
      res.write(body.subarray(0, file.pauseAt));
      await new Promise<void>((resolve) => releasers.push(resolve));
      res.end(body.subarray(file.pauseAt));
      return;
    }
    res.end(body);
  }

  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `127.0.0.1:${port}`,
    files,
    requests,
    count: (path) => requests.filter((r) => r.path === path).length,
    release: () => {
      for (const r of releasers) r();
      releasers = [];
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

function status200(res: ServerResponse): boolean {
  return res.statusCode === 200;
}
