import { isIP } from 'node:net';
import { AccelError } from '../core/errors.ts';

/**
 * Ports, bind addresses and server URLs as a user types them, checked where they are parsed: a mistake is a
 * usage error (exit 2) naming the flag, never a stack trace from deep inside listen() or new URL().
 */

/** 1–65535; 0 (any free port) too, which tests and scripts that read the announced address use. */
export function parsePort(value: string | number, flag = '--port'): number {
  const text = String(value).trim();
  const port = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new AccelError('ACCEL_USAGE_BAD_PORT', `${flag} must be a port number from 1 to 65535, not '${value}'`, {
      hint: `for example ${flag} 8000 (0 picks a free port)`,
    });
  }
  return port;
}

/** An IPv4/IPv6 address or `localhost`: what a server can bind. Host names are not bound (they may resolve anywhere). */
export function parseBind(value: string, flag = '--bind'): string {
  const host = value.trim().replace(/^\[(.*)\]$/, '$1');
  if (host === 'localhost' || isIP(host) !== 0) return host;
  throw new AccelError('ACCEL_USAGE_BAD_ADDRESS', `${flag} must be an IP address of this machine, not '${value}'`, {
    hint: `for example ${flag} 127.0.0.1 (this machine only) or ${flag} 0.0.0.0 (every interface)`,
  });
}

/** An https URL of a farm server (`https://HOST:PORT`); a bare `HOST:PORT` gets the hint it needs. */
export function parseServerUrl(value: string, flag: string, defaultPort = 5000): URL {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:' || !url.hostname) {
    const bare = /^[\w.-]+(:\d+)?$/.test(value) || /^\[[0-9a-f:]+\](:\d+)?$/i.test(value);
    throw new AccelError('ACCEL_USAGE_BAD_URL', `${flag} must be an https URL, not '${value}'`, {
      hint: bare ? `did you mean ${flag} https://${value}?` : `for example ${flag} https://HOST:${defaultPort}`,
    });
  }
  if (url.port !== '') parsePort(url.port, flag);
  return url;
}
