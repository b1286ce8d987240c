import { createHash, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Config } from '../../core/config.ts';
import { loadIdentity } from '../../net/tls-identity.ts';
import { unaryCall } from '../../reapi/call.ts';
import { type ActionResult, type Digest, type MethodSpec, msg, type Operation, services } from '../../reapi/proto.ts';
import { Fallback } from '../client.ts';

/** Execute said FAILED_PRECONDITION: blobs the action needs are not (or no longer) on the engine. */
export class MissingOnEngine extends Fallback {}

/** Larger blobs go by ByteStream, smaller ones in batches of at most this much. */
const BATCH_MAX = 3 * 1024 * 1024;
const QUICK_MS = 30_000;

/** A blob's REAPI digest. */
export function digestOf(data: Buffer): Digest {
  return { hash: createHash('sha256').update(data).digest('hex'), size_bytes: data.length };
}

/** The engine side of `accel cc` over REAPI: one gRPC channel per engine, the calls it makes, errors as fallbacks. */
const clients = new Map<string, ReapiClient>();
// grpc-js would print its own diagnostics into the compile's stderr; an engine's trouble is a counted fallback.
grpc.setLogVerbosity(grpc.logVerbosity.NONE);

export function clientFor(farm: Config['farm'], home: string): ReapiClient {
  const headers = farm.reapiHeaders.map((h) => {
    const at = h.indexOf('=');
    return [
      h
        .slice(0, at < 0 ? h.length : at)
        .trim()
        .toLowerCase(),
      at < 0 ? '' : h.slice(at + 1),
    ] as [string, string];
  });
  if (farm.reapiToken) headers.push(['authorization', `Bearer ${farm.reapiToken}`]);
  const key = JSON.stringify([farm.reapi, farm.reapiInstance, headers, home]);
  let client = clients.get(key);
  if (!client) {
    client = new ReapiClient(farm.reapi, farm.reapiInstance, headers, home);
    clients.set(key, client);
  }
  return client;
}

/** The few calls `accel cc` makes, over one channel; every engine error becomes a Fallback. */
export class ReapiClient {
  readonly #client: grpc.Client;
  readonly #instance: string;
  readonly #headers: [string, string][];
  /** Blobs the engine has said it has, or took from us: not asked about again (FindMissingBlobs). */
  readonly #present = new Set<string>();

  constructor(url: string, instance: string, headers: [string, string][], home: string) {
    const m = /^(grpcs?):\/\/([^/\s]+)\/?$/.exec(url);
    if (!m) throw new Fallback('farm.reapi is not a grpc(s)://HOST:PORT URL');
    let credentials: grpc.ChannelCredentials;
    if (m[1] === 'grpc') credentials = grpc.credentials.createInsecure();
    else {
      let identity: ReturnType<typeof loadIdentity> | undefined;
      try {
        identity = loadIdentity(home, 'client');
      } catch {
        identity = undefined; // an engine that takes a token over plain TLS with public roots
      }
      credentials = identity
        ? grpc.credentials.createSsl(Buffer.from(identity.ca), Buffer.from(identity.key), Buffer.from(identity.cert))
        : grpc.credentials.createSsl();
    }
    this.#client = new grpc.Client(m[2] as string, credentials, {
      'grpc.max_receive_message_length': 8 * 1024 * 1024,
      'grpc.max_send_message_length': 8 * 1024 * 1024,
    });
    this.#instance = instance;
    this.#headers = headers;
  }

  #metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    for (const [name, value] of this.#headers) md.set(name, value);
    return md;
  }

  #unary<Req, Res>(spec: MethodSpec, req: Req, timeoutMs = QUICK_MS): Promise<Res> {
    return unaryCall<Res>(this.#client, spec, req, { metadata: this.#metadata(), timeoutMs }).catch(
      (err: grpc.ServiceError) => {
        throw engineError(err);
      },
    );
  }

  async reachable(timeoutMs: number): Promise<boolean> {
    try {
      await this.#unary(services.Capabilities.GetCapabilities, { instance_name: this.#instance }, timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  /** Uploads the blobs the engine lacks: small ones in batches, large ones over ByteStream. */
  /** Forgets which blobs the engine has (it lost some). */
  forget(): void {
    this.#present.clear();
  }

  async upload(blobs: { digest: Digest; data: () => Buffer }[]): Promise<void> {
    const unknown = blobs.filter((b) => !this.#present.has(b.digest.hash));
    if (unknown.length === 0) return;
    const res = await this.#unary<unknown, { missing_blob_digests: Digest[] }>(
      services.ContentAddressableStorage.FindMissingBlobs,
      { instance_name: this.#instance, blob_digests: unknown.map((b) => b.digest) },
    );
    const missing = new Set(res.missing_blob_digests.map((d) => d.hash));
    const todo = unknown.filter((b) => missing.has(b.digest.hash));
    let batch: { digest: Digest; data: Buffer }[] = [];
    let size = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const r = await this.#unary<unknown, { responses: { status?: { code: number; message: string } }[] }>(
        services.ContentAddressableStorage.BatchUpdateBlobs,
        { instance_name: this.#instance, requests: batch },
      );
      if (r.responses.some((x) => (x.status?.code ?? 0) !== 0)) throw new Fallback('upload refused');
      batch = [];
      size = 0;
    };
    for (const blob of todo) {
      const data = blob.data();
      if (data.length > BATCH_MAX) {
        await this.#write(blob.digest, data);
        continue;
      }
      if (size + data.length > BATCH_MAX) await flush();
      batch.push({ digest: blob.digest, data });
      size += data.length;
    }
    await flush();
    if (this.#present.size > 200_000) this.#present.clear();
    for (const b of unknown) this.#present.add(b.digest.hash);
  }

  #write(digest: Digest, data: Buffer): Promise<void> {
    const spec = services.ByteStream.Write;
    const name = `${this.#instance ? `${this.#instance}/` : ''}uploads/${randomUUID()}/blobs/${digest.hash}/${digest.size_bytes}`;
    return new Promise((resolvePromise, reject) => {
      const stream = this.#client.makeClientStreamRequest(
        spec.path,
        spec.requestSerialize,
        spec.responseDeserialize,
        this.#metadata(),
        { deadline: Date.now() + 5 * QUICK_MS },
        (err) => (err ? reject(engineError(err)) : resolvePromise()),
      );
      const chunk = 1024 * 1024;
      for (let i = 0; i < data.length || i === 0; i += chunk) {
        const end = Math.min(data.length, i + chunk);
        stream.write({
          resource_name: i === 0 ? name : '',
          write_offset: i,
          finish_write: end === data.length,
          data: data.subarray(i, end),
        });
        if (data.length === 0) break;
      }
      stream.end();
    });
  }

  /** Runs the action; resolves with its result, or a Fallback for anything but a finished compile. */
  execute(action: Digest, inline: string[]): Promise<ActionResult> {
    const spec = services.Execution.Execute;
    return new Promise((resolvePromise, reject) => {
      const stream = this.#client.makeServerStreamRequest(
        spec.path,
        spec.requestSerialize,
        spec.responseDeserialize,
        // Outputs inline (engines that honour it save a read per output), and stdout/stderr.
        {
          instance_name: this.#instance,
          action_digest: action,
          skip_cache_lookup: false,
          inline_stdout: true,
          inline_stderr: true,
          inline_output_files: inline,
        },
        this.#metadata(),
        { deadline: Date.now() + 60 * 60_000 },
      );
      let last: Operation | undefined;
      stream.on('data', (op: Operation) => {
        last = op;
      });
      stream.on('error', (err: grpc.ServiceError) =>
        reject(
          err.code === grpc.status.FAILED_PRECONDITION
            ? new MissingOnEngine('inputs missing on the engine')
            : engineError(err),
        ),
      );
      stream.on('end', () => {
        if (!last?.done) return reject(new Fallback('the engine ended the operation unfinished'));
        if (last.error && last.error.code !== 0)
          return reject(new Fallback(`engine error ${grpc.status[last.error.code]}`));
        if (!last.response) return reject(new Fallback('the engine sent no result'));
        const response = msg.ExecuteResponse.decode(last.response.value);
        if (response.status?.code === grpc.status.FAILED_PRECONDITION)
          return reject(new MissingOnEngine('inputs missing on the engine'));
        if (response.status && response.status.code !== 0)
          return reject(new Fallback(`engine error ${grpc.status[response.status.code] ?? response.status.code}`));
        if (!response.result) return reject(new Fallback('the engine sent no result'));
        resolvePromise(response.result);
      });
    });
  }

  async download(digests: Digest[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    const small = digests.filter((d) => d.size_bytes <= BATCH_MAX);
    for (let i = 0; i < small.length; ) {
      const batch: Digest[] = [];
      let size = 0;
      while (i < small.length && (batch.length === 0 || size + (small[i] as Digest).size_bytes <= BATCH_MAX)) {
        size += (small[i] as Digest).size_bytes;
        batch.push(small[i++] as Digest);
      }
      const r = await this.#unary<
        unknown,
        { responses: { digest?: Digest; data: Buffer; status?: { code: number } }[] }
      >(services.ContentAddressableStorage.BatchReadBlobs, { instance_name: this.#instance, digests: batch });
      for (const x of r.responses)
        if (x.digest && (x.status?.code ?? 0) === 0) out.set(x.digest.hash, Buffer.from(x.data));
    }
    for (const d of digests.filter((x) => x.size_bytes > BATCH_MAX)) out.set(d.hash, await this.#read(d));
    for (const d of digests) {
      const data = out.get(d.hash);
      if (!data || digestOf(data).hash !== d.hash) throw new Fallback('output missing on the engine');
    }
    return out;
  }

  #read(digest: Digest): Promise<Buffer> {
    const spec = services.ByteStream.Read;
    const name = `${this.#instance ? `${this.#instance}/` : ''}blobs/${digest.hash}/${digest.size_bytes}`;
    return new Promise((resolvePromise, reject) => {
      const chunks: Buffer[] = [];
      const stream = this.#client.makeServerStreamRequest(
        spec.path,
        spec.requestSerialize,
        spec.responseDeserialize,
        { resource_name: name, read_offset: 0, read_limit: 0 },
        this.#metadata(),
        { deadline: Date.now() + 5 * QUICK_MS },
      );
      stream.on('data', (r: { data: Buffer }) => chunks.push(Buffer.from(r.data)));
      stream.on('error', (err: grpc.ServiceError) => reject(engineError(err)));
      stream.on('end', () => resolvePromise(Buffer.concat(chunks)));
    });
  }

  async text(digest: Digest | undefined): Promise<Buffer> {
    if (!digest?.hash || digest.size_bytes === 0) return Buffer.alloc(0);
    return (await this.download([digest])).get(digest.hash) as Buffer;
  }
}

/** An engine that cannot be reached is "farm unreachable" (remembered); anything else is its code's name. */
function engineError(err: grpc.ServiceError): Fallback {
  if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED)
    return new Fallback('farm unreachable');
  if (err.code === grpc.status.PERMISSION_DENIED && /ACCEL_[A-Z_]+/.test(err.details))
    return new Fallback(`refused: ${/ACCEL_[A-Z_]+/.exec(err.details)?.[0]}`);
  return new Fallback(`engine error ${grpc.status[err.code] ?? err.code}`);
}
