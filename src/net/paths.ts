import { type HomeLayout, homeLayout } from '../core/home-layout.ts';

/** Where certificates live under ACCEL_HOME (spelled in core/home-layout.ts). */
export type CertPaths = HomeLayout['certs'];

export function certPaths(home: string): CertPaths {
  return homeLayout(home).certs;
}
