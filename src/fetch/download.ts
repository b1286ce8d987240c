import { type FileHandle, open } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { AccelError, errnoCode } from '../core/errors.ts';
import type { BlobInfo, BlobWriter } from '../store/cas.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import { resolveUpstream } from './guard.ts';
import { requestUpstream } from './upstream.ts';

export interface DownloadOptions {
  /** Upstream URLs tried in order until one answers 200 (or 304): failover across mirrors. */
  candidates: string[];
  expected?: Digest;
  /** Validators of the copy we hold: the upstream may answer 304. */
  conditional?: { etag?: string; lastModified?: string };
  allow: readonly string[];
  stallMs: number;
  userAgent: string;
  /** Called with every chunk received from an upstream (for byte counters). */
  onBytes?: (n: number) => void;
  /** An `Authorization` header for one origin (a parent mirror's token): sent on every hop to it, never elsewhere. */
  authorization?: { origin: string; value: string };
  /** Headers a client asked to send to one origin (Bazel's http_header qualifiers): on every hop to it only. */
  originHeaders?: OriginHeaders[];
}

export interface OriginHeaders {
  origin: string;
  headers: Record<string, string>;
}

/** What the upstream said, known as soon as a response head arrived. */
export type DownloadHead =
  | {
      kind: 'body';
      url: string;
      contentLength?: number;
      contentType?: string;
      etag?: string;
      lastModified?: string;
      /** `X-Accel-Epoch`: the apt epoch an accel mirror served this release file from (see mirror/apt). */
      epoch?: string;
    }
  | { kind: 'not-modified'; url: string }
  | { kind: 'status'; status: number; url: string };

/** Redirects followed per request, as browsers and curl -L limit them. */
const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Resume an interrupted body with Range this many times before giving up. */
const MAX_RESUMES = 3;
const READ_CHUNK = 256 * 1024;

/**
 * One upstream download that any number of readers follow while it runs. Bytes go to a store temp file;
 * readers tail that file, so a slow reader never holds memory and a fast one gets bytes as they arrive.
 * The last byte is held back from readers until the blob is complete and stored: a download that fails
 * at any point, including a checksum mismatch at the end, can never look like a complete body.
 */
export class Download {
  readonly head: Promise<DownloadHead>;
  /** The stored blob; undefined when the upstream sent no body (304, an error status). */
  readonly done: Promise<BlobInfo | undefined>;
  #writer: BlobWriter | undefined;
  #finished = false;
  #failure: unknown;
  #waiters: (() => void)[] = [];
  readonly #store: Store;
  /** Set by abort(): the server is closing; the download stops and stores nothing. */
  #aborted: AccelError | undefined;
  #response: IncomingMessage | undefined;

  constructor(store: Store, options: DownloadOptions) {
    this.#store = store;
    let setHead: (head: DownloadHead) => void = () => {};
    this.head = new Promise((resolve) => {
      setHead = resolve;
    });
    this.done = this.#run(store, options, (h) => setHead(h)).then(
      (info) => {
        this.#finish(undefined);
        return info;
      },
      (err: unknown) => {
        this.#finish(err);
        throw err;
      },
    );
    // Make both promises safe to ignore: callers that only stream use the reader.
    this.done.catch(() => {});
    this.head.then(() => {});
  }

  /**
   * Stops the download (the mirror is closing): the connection to the upstream is cut, the temp file removed,
   * nothing is stored, and `done` rejects. Resolves once the download has settled.
   */
  async abort(): Promise<void> {
    this.#aborted ??= new AccelError('ACCEL_FETCH_ABORTED', 'the download was stopped: the server is closing');
    this.#response?.destroy(this.#aborted);
    await this.done.catch(() => {});
  }

  /** The bytes so far and then the rest as they arrive; throws if the download fails. */
  async *read(start = 0): AsyncGenerator<Buffer> {
    const writer = this.#writer;
    if (!writer) throw new Error('read() before the head said body');
    let fh: FileHandle;
    try {
      fh = await open(writer.path, 'r');
    } catch (err) {
      // Committed between the head and this read: the temp file became the blob.
      if (errnoCode(err) !== 'ENOENT') throw err;
      yield* this.#readStored(start);
      return;
    }
    try {
      let position = start;
      for (;;) {
        const available = this.#finished && this.#failure === undefined ? writer.size : writer.size - 1;
        if (position < available) {
          const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, available - position));
          const { bytesRead } = await fh.read(buffer, 0, buffer.length, position);
          position += bytesRead;
          yield buffer.subarray(0, bytesRead);
          continue;
        }
        if (this.#failure !== undefined) throw this.#failure;
        if (this.#finished) return;
        await new Promise<void>((resolve) => this.#waiters.push(resolve));
      }
    } finally {
      await fh.close();
    }
  }

  async *#readStored(start: number): AsyncGenerator<Buffer> {
    const info = await this.done;
    const opened = info && (await this.#store.openFile(info.digest));
    if (!opened) throw new AccelError('ACCEL_FETCH_TRUNCATED', 'the download finished but its blob is gone');
    try {
      for (let position = start; position < opened.info.size; ) {
        const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, opened.info.size - position));
        const { bytesRead } = await opened.fh.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) throw new AccelError('ACCEL_FETCH_TRUNCATED', 'stored blob shorter than its index entry');
        position += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    } finally {
      await opened.fh.close();
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #finish(failure: unknown): void {
    this.#finished = true;
    this.#failure = failure;
    this.#wake();
  }

  async #run(
    store: Store,
    options: DownloadOptions,
    setHead: (h: DownloadHead) => void,
  ): Promise<BlobInfo | undefined> {
    let lastError: unknown;
    let lastStatus: DownloadHead | undefined;
    for (const candidate of options.candidates) {
      if (this.#aborted) throw this.#aborted;
      let response: IncomingMessage;
      let source: string;
      try {
        ({ response, url: source } = await this.#request(candidate, options, conditionalHeaders(options.conditional)));
      } catch (err) {
        // Unreachable or refused: the next mirror may do.
        lastError = err;
        continue;
      }
      const status = response.statusCode ?? 0;
      if (status === 304 && options.conditional) {
        response.resume();
        setHead({ kind: 'not-modified', url: candidate });
        return undefined;
      }
      if (status !== 200) {
        response.resume();
        lastStatus = { kind: 'status', status, url: candidate };
        continue;
      }
      if (this.#aborted) {
        response.destroy();
        throw this.#aborted;
      }
      const writer = await store.createWriter();
      this.#writer = writer;
      const head = bodyHead(candidate, response);
      setHead(head);
      try {
        // A resumed body is asked of the URL that served it, past any redirect.
        await this.#pump(response, writer, source, head, options);
        return await writer.commit({ expected: options.expected });
      } catch (err) {
        await writer.abort();
        throw err;
      }
    }
    if (lastStatus) {
      setHead(lastStatus);
      return undefined;
    }
    const error = unreachable(
      lastError ?? new AccelError('ACCEL_FETCH_NO_UPSTREAM', 'no upstream URL to fetch', { exitCode: 1 }),
      options.candidates,
    );
    // Readers that only await the head must learn of the failure too.
    setHead({ kind: 'status', status: isRefusal(error) ? 403 : 502, url: options.candidates[0] ?? '' });
    throw error;
  }

  /**
   * Requests `url`, following redirects (GitHub's archives and release assets, most package CDNs): up to
   * MAX_REDIRECTS hops, each one through the same guard as the first URL (scheme, private and loopback
   * addresses, the allowlist), and never from https down to plain http unless the content is pinned by a
   * digest, which makes the transport irrelevant. Returns the final response and where it came from.
   */
  async #request(
    url: string,
    options: DownloadOptions,
    headers: Record<string, string>,
  ): Promise<{ response: IncomingMessage; url: string }> {
    let current = url;
    for (let hop = 0; ; hop++) {
      const upstream = await resolveUpstream(current, options.allow);
      const auth = options.authorization;
      const extra = (options.originHeaders ?? []).filter((h) => h.origin === upstream.url.origin);
      const response = await requestUpstream({
        upstream,
        headers: Object.assign(
          {},
          ...extra.map((h) => h.headers),
          headers,
          auth && upstream.url.origin === auth.origin ? { authorization: auth.value } : {},
        ),
        stallMs: options.stallMs,
        userAgent: options.userAgent,
      });
      const location = response.headers.location;
      if (!REDIRECTS.has(response.statusCode ?? 0) || !location) return { response, url: current };
      response.resume();
      if (hop >= MAX_REDIRECTS) {
        throw new AccelError('ACCEL_FETCH_REDIRECTS', `${url} redirects more than ${MAX_REDIRECTS} times`, {
          hint: 'ask for the final URL instead',
        });
      }
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new AccelError('ACCEL_FETCH_BAD_URL', `${current} redirects to an invalid URL: ${location}`);
      }
      if (new URL(current).protocol === 'https:' && next.protocol === 'http:' && options.expected === undefined) {
        throw new AccelError('ACCEL_FETCH_REFUSED', `${current} redirects to plain http (${next.href}): refused`, {
          hint: 'a downgrade is followed only for content pinned by its digest (?sha256=…)',
        });
      }
      current = next.href;
    }
  }

  /** Copies the body into the writer; on a broken connection resumes with Range where the upstream allows it. */
  async #pump(
    first: IncomingMessage,
    writer: BlobWriter,
    url: string,
    head: Extract<DownloadHead, { kind: 'body' }>,
    options: DownloadOptions,
  ): Promise<void> {
    let response = first;
    this.#response = response;
    const validator = head.etag ?? head.lastModified;
    const resumable = first.headers['accept-ranges'] === 'bytes' && validator !== undefined;
    for (let resumes = 0; ; resumes++) {
      try {
        for await (const chunk of response) {
          await writer.write(chunk as Buffer);
          options.onBytes?.((chunk as Buffer).length);
          this.#wake();
        }
        if (head.contentLength !== undefined && writer.size !== head.contentLength) {
          throw truncated(url, writer.size, head.contentLength);
        }
        return;
      } catch (err) {
        if (this.#aborted) throw this.#aborted;
        // Store errors (a full disk) end the download; network errors may be resumed.
        const network =
          !(err instanceof AccelError) || err.code === 'ACCEL_FETCH_TRUNCATED' || err.code === 'ACCEL_FETCH_STALLED';
        if (!network) throw err;
        if (!resumable || resumes >= MAX_RESUMES) {
          throw err instanceof AccelError ? err : truncated(url, writer.size, head.contentLength, err);
        }
        response.destroy();
        ({ response } = await this.#request(url, options, { range: `bytes=${writer.size}-`, 'if-range': validator }));
        this.#response = response;
        const range = /^bytes (\d+)-/.exec(String(response.headers['content-range'] ?? ''));
        if (response.statusCode !== 206 || Number(range?.[1]) !== writer.size) {
          response.resume();
          throw truncated(url, writer.size, head.contentLength, err);
        }
      }
    }
  }
}

function bodyHead(url: string, response: IncomingMessage): Extract<DownloadHead, { kind: 'body' }> {
  const length = response.headers['content-length'];
  return {
    kind: 'body',
    url,
    contentLength: length === undefined ? undefined : Number(length),
    contentType: response.headers['content-type'],
    etag: response.headers.etag,
    lastModified: response.headers['last-modified'],
    epoch: header(response, 'x-accel-epoch'),
  };
}

function header(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function conditionalHeaders(conditional: DownloadOptions['conditional']): Record<string, string> {
  const headers: Record<string, string> = {};
  if (conditional?.etag) headers['if-none-match'] = conditional.etag;
  if (conditional?.lastModified) headers['if-modified-since'] = conditional.lastModified;
  return headers;
}

function isRefusal(err: unknown): boolean {
  return err instanceof AccelError && (err.code === 'ACCEL_FETCH_REFUSED' || err.code === 'ACCEL_FETCH_BAD_URL');
}

function truncated(url: string, got: number, expected: number | undefined, cause?: unknown): AccelError {
  const of = expected === undefined ? '' : ` of ${expected}`;
  return new AccelError('ACCEL_FETCH_TRUNCATED', `download of ${url} broke off after ${got}${of} bytes`, {
    hint: 'the upstream closed the connection early; nothing was stored, the next request fetches again',
    cause,
  });
}

/** A connection that could not be made or broke (refused, reset, no route) is the upstream's failure: a 502. */
function unreachable(err: unknown, candidates: readonly string[]): unknown {
  if (err instanceof AccelError || !errnoCode(err)) return err;
  const where = candidates.map((c) => new URL(c).host).join(', ');
  return new AccelError('ACCEL_FETCH_UNREACHABLE', `cannot reach ${where}: ${(err as Error).message}`, {
    hint: 'is the upstream up, and does this machine reach it?',
    cause: err,
  });
}
