import { AccelError } from '../core/errors.ts';
import { homeLayout } from '../core/home-layout.ts';

/*
 * The cc daemon's wire format, spoken by native/accel-cc.c and by daemon-client.ts. Chosen so the C client
 * needs no parser: a request is one length-prefixed list of NUL-terminated strings, an answer is a series of
 * typed frames.
 *
 *   request  = u32le length, then MAGIC \0 secret \0 kind \0 ...
 *              kind "compile": pid \0 umask \0 cwd \0 argc \0 argv... \0 envc \0 "K=V"... \0
 *              (argv[0]: the compiler; umask in decimal: outputs get the client's permissions)
 *              kind "status" | "stop": nothing more
 *   frame    = type (1 byte), u32le length, payload
 *              'k' keep-alive while compiling · 'o' stdout bytes · 'e' stderr bytes · 'x' exit code (decimal)
 *              'r' run this compiler yourself (uncacheable: the client's terminal and stdin matter)
 *              'j' JSON (status and stop answers)
 */
export const MAGIC = 'ACCEL-CC/1';
/** Larger requests are refused: argv and the environment of a compile are a few KB. */
export const MAX_REQUEST = 8 * 1024 * 1024;

export type FrameType = 'k' | 'o' | 'e' | 'x' | 'r' | 'j';

export type Request =
  | {
      kind: 'compile';
      secret: string;
      pid: number;
      umask: number;
      cwd: string;
      argv: string[];
      env: NodeJS.ProcessEnv;
    }
  | { kind: 'status' | 'stop'; secret: string };

/** Where a home's daemon lives: its socket, the secret a client must present, its lock, pid file and log. */
export function daemonPaths(home: string) {
  const { run } = homeLayout(home);
  return { dir: run.dir, socket: run.ccSocket, secret: run.ccSecret, lock: run.ccLock, pid: run.ccPid, log: run.ccLog };
}

export function encodeRequest(request: Request): Buffer {
  const fields = [MAGIC, request.secret, request.kind];
  if (request.kind === 'compile') {
    const env = Object.entries(request.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
    fields.push(String(request.pid), String(request.umask), request.cwd, String(request.argv.length), ...request.argv);
    fields.push(String(env.length), ...env);
  }
  const body = Buffer.from(fields.map((f) => `${f}\0`).join(''));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length);
  return Buffer.concat([head, body]);
}

/** Parses a request body (without its length prefix). */
export function decodeRequest(body: Buffer): Request {
  const fields = body.toString('utf8').split('\0');
  if (fields.at(-1) !== '') throw bad('the request does not end with NUL');
  fields.pop();
  let i = 0;
  const next = (): string => {
    const f = fields[i++];
    if (f === undefined) throw bad('the request is truncated');
    return f;
  };
  const count = (): number => {
    const n = Number(next());
    if (!Number.isInteger(n) || n < 0 || n > fields.length) throw bad('a count is not a number');
    return n;
  };
  if (next() !== MAGIC) throw bad(`not an ${MAGIC} request`);
  const secret = next();
  const kind = next();
  if (kind === 'status' || kind === 'stop') return { kind, secret };
  if (kind !== 'compile') throw bad(`unknown request kind '${kind}'`);
  const pid = Number(next());
  const umask = Number(next());
  if (!Number.isInteger(umask) || umask < 0 || umask > 0o777) throw bad('the umask is not a number');
  const cwd = next();
  const argv = Array.from({ length: count() }, next);
  const env: NodeJS.ProcessEnv = {};
  for (const entry of Array.from({ length: count() }, next)) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return { kind, secret, pid, umask, cwd, argv, env };
}

export function frame(type: FrameType, payload: Buffer | string = ''): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32LE(data.length, 1);
  return Buffer.concat([head, data]);
}

/**
 * Splits a byte stream into frames; feed it chunks as they arrive. Chunks are only joined once a whole frame
 * is there, so a large frame arriving in small pieces costs linear time.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #length = 0;

  push(chunk: Buffer): { type: FrameType; payload: Buffer }[] {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    const frames: { type: FrameType; payload: Buffer }[] = [];
    while (this.#length >= 5) {
      if ((this.#chunks[0] as Buffer).length < 5) this.#join();
      const head = this.#chunks[0] as Buffer;
      const size = 5 + head.readUInt32LE(1);
      if (this.#length < size) break;
      if (head.length < size) this.#join();
      const all = this.#chunks[0] as Buffer;
      frames.push({ type: all.toString('latin1', 0, 1) as FrameType, payload: all.subarray(5, size) });
      if (all.length > size) this.#chunks[0] = all.subarray(size);
      else this.#chunks.shift();
      this.#length -= size;
    }
    return frames;
  }

  #join(): void {
    this.#chunks = [Buffer.concat(this.#chunks)];
  }
}

function bad(message: string): AccelError {
  return new AccelError('ACCEL_CC_DAEMON_PROTOCOL', message);
}
