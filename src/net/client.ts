import { Agent } from 'node:https';
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';
import { AccelError } from '../core/errors.ts';
import { fetchBuffer } from './http.ts';
import { type Identity, type Role, roleFromOu } from './tls-identity.ts';

export interface HttpsResponse {
  status: number;
  body: Buffer;
}

/** How long a TLS handshake may take. */
const HANDSHAKE_MS = 5_000;

/** An HTTPS client presenting this machine's certificate and trusting only the installation's CA. */
export class MtlsClient {
  readonly base: URL;
  readonly #agent: Agent;

  /**
   * `role` is the role the server's certificate must carry (default: syncer): a worker's or a client's
   * certificate is from the same CA, so the CA alone does not tell a syncer from an impostor.
   */
  constructor(base: string, identity: Identity, options: { maxSockets?: number; role?: Role } = {}) {
    const role = options.role ?? 'syncer';
    this.base = new URL(base);
    if (this.base.protocol !== 'https:') {
      throw new AccelError('ACCEL_CONFIG_INVALID', `the farm speaks HTTPS only, not ${base}`, {
        hint: 'use https://HOST:5000',
      });
    }
    this.#agent = new Agent({
      keepAlive: true,
      maxSockets: options.maxSockets ?? 64,
      key: identity.key,
      cert: identity.cert,
      ca: identity.ca,
      checkServerIdentity: (host: string, cert: PeerCertificate) => {
        const err = checkServerIdentity(host, cert);
        if (err) return err;
        const got = roleFromOu(cert.subject?.OU);
        if (got === role) return undefined;
        return new AccelError(
          'ACCEL_FARM_WRONG_PEER',
          `${this.base.origin} presented a ${got ?? 'role-less'} certificate (${cert.subject?.CN}), not a ${role}'s`,
          { hint: `check the URL: it must name the ${role}` },
        );
      },
    });
  }

  /** One request; network failures reject (callers decide whether to retry), HTTP statuses resolve. */
  request(
    method: string,
    path: string,
    body?: Buffer | string | object,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<HttpsResponse> {
    const data =
      body === undefined ? undefined : Buffer.isBuffer(body) || typeof body === 'string' ? body : JSON.stringify(body);
    const headers: Record<string, string | number> = {};
    if (data !== undefined) {
      headers['content-length'] = Buffer.byteLength(data);
      headers['content-type'] = Buffer.isBuffer(body) ? 'application/octet-stream' : 'application/json';
    }
    return fetchBuffer(new URL(path, this.base), {
      method,
      agent: this.#agent,
      headers,
      body: data,
      signal: options.signal,
      idleMs: options.timeoutMs,
      // A server that takes the TCP connection but never completes TLS (hung, or not a syncer at all) costs
      // at most HANDSHAKE_MS, whatever time the answer itself may take.
      onSocket: (socket, fail) => {
        const tls = socket as TLSSocket;
        if (tls.authorized) return;
        const timer = setTimeout(
          () => fail(new Error(`${this.base.origin} did not complete TLS in ${HANDSHAKE_MS} ms`)),
          HANDSHAKE_MS,
        );
        tls.once('secureConnect', () => clearTimeout(timer));
        tls.once('close', () => clearTimeout(timer));
      },
    }).then((res) => ({ status: res.status, body: res.body }));
  }

  async json<T>(method: string, path: string, body?: object, options?: { signal?: AbortSignal; timeoutMs?: number }) {
    const res = await this.request(method, path, body, options);
    const text = res.body.toString();
    return { status: res.status, value: (text ? JSON.parse(text) : undefined) as T };
  }

  close(): void {
    this.#agent.destroy();
  }
}
