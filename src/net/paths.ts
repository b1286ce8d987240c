import { join } from 'node:path';

/** Where certificates live under ACCEL_HOME. */
export interface CertPaths {
  dir: string;
  caKey: string;
  caCert: string;
  /** The certificate this machine presents, installed from a bundle. */
  cert: string;
  key: string;
  issued: string;
}

export function certPaths(home: string): CertPaths {
  const dir = join(home, 'certs');
  return {
    dir,
    caKey: join(dir, 'ca.key'),
    caCert: join(dir, 'ca.crt'),
    cert: join(dir, 'identity.crt'),
    key: join(dir, 'identity.key'),
    issued: join(dir, 'issued'),
  };
}
