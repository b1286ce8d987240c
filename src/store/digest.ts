import { createHash, type Hash } from 'node:crypto';
import { AccelError } from '../core/errors.ts';

/** A sha256 content digest: 64 lowercase hex characters. */
export type Digest = string & { readonly __digest: unique symbol };

const DIGEST_RE = /^(?:sha256:)?([0-9a-fA-F]{64})$/;

/** Accepts `<64 hex>` or `sha256:<64 hex>` in either case; anything else is a usage error. */
export function parseDigest(text: string): Digest {
  const m = DIGEST_RE.exec(text.trim());
  if (!m?.[1]) {
    throw new AccelError('ACCEL_STORE_BAD_DIGEST', `not a sha256 digest: '${text}'`, {
      hint: 'a digest is 64 hex characters, optionally prefixed with sha256:',
      exitCode: 2,
    });
  }
  return m[1].toLowerCase() as Digest;
}

export function isDigest(text: string): text is Digest {
  return /^[0-9a-f]{64}$/.test(text);
}

export function newHasher(): Hash {
  return createHash('sha256');
}

export function digestOf(data: Buffer | string): Digest {
  return createHash('sha256').update(data).digest('hex') as Digest;
}
