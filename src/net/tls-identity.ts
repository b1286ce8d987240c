import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AccelError, errnoCode } from '../core/errors.ts';
import { certPaths } from './paths.ts';

/**
 * A machine's installed certificate and its role. Kept apart from the CA code (node-forge, ~400 ms to load)
 * because every `accel cc` with a farm configured loads this.
 */
export const ROLES = ['syncer', 'worker', 'client'] as const;
export type Role = (typeof ROLES)[number];

const OU_PREFIX = 'accel-';

/** The role written in a certificate's OU, or undefined. */
export function roleOf(pem: string): Role | undefined {
  return roleFromOu(/^OU=(.*)$/m.exec(new X509Certificate(pem).subject)?.[1]);
}

export function roleFromOu(ou: string | string[] | undefined): Role | undefined {
  const value = Array.isArray(ou) ? ou[0] : ou;
  if (!value?.startsWith(OU_PREFIX)) return undefined;
  const role = value.slice(OU_PREFIX.length);
  return (ROLES as readonly string[]).includes(role) ? (role as Role) : undefined;
}

/** The PEMs a process presents and trusts. */
export interface Identity {
  name: string;
  role: Role;
  ca: string;
  cert: string;
  key: string;
}

/** This machine's installed certificate, which must carry `role` when one is given. */
export function loadIdentity(home: string, role?: Role): Identity {
  const paths = certPaths(home);
  let cert: string;
  let key: string;
  let ca: string;
  try {
    cert = readFileSync(paths.cert, 'utf8');
    key = readFileSync(paths.key, 'utf8');
    ca = readFileSync(paths.caCert, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    throw new AccelError('ACCEL_CERTS_NOT_INSTALLED', `no certificate installed in ${paths.dir}`, {
      hint: `on the CA machine: accel certs issue NAME --role ${role ?? 'client'} && accel certs bundle NAME -o NAME.json; here: accel certs install NAME.json`,
    });
  }
  const actual = roleOf(cert);
  if (!actual || (role && actual !== role)) {
    throw new AccelError(
      'ACCEL_CERTS_WRONG_ROLE',
      `the installed certificate is for a ${actual ?? 'unknown role'}, not a ${role ?? 'farm role'}`,
      {
        hint: `install a bundle issued with --role ${role ?? 'client'}`,
      },
    );
  }
  const name = new X509Certificate(cert).subject.match(/CN=([^\n]+)/)?.[1] ?? '';
  return { name, role: actual, ca, cert, key };
}
