import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import forge from 'node-forge';
import { writeFileAtomic } from '../core/atomic-fs.ts';
import { makeDirs } from '../core/dirs.ts';
import { AccelError, errnoCode } from '../core/errors.ts';
import { type CertPaths, certPaths } from './paths.ts';
import { ROLES, type Role, roleOf } from './tls-identity.ts';

export { certPaths } from './paths.ts';
export { ROLES, type Role } from './tls-identity.ts';

/**
 * An installation's certificates: one CA per installation (`accel certs init`), and one certificate per
 * machine whose role (syncer, worker, client) is written in the subject's OU, so the syncer can enforce what a
 * peer may do from the certificate alone. node-forge builds and signs the certificates (Node can verify X.509
 * but cannot create it); keys come from Node's native RSA generator, which is ~100× faster than forge's.
 */
const CA_YEARS = 10;
const LEAF_DAYS = 825;

export interface CertInfo {
  name: string;
  role: Role | 'ca';
  fingerprint: string;
  validTo: string;
  file: string;
}

function newKeyPair(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { privatePem: privateKey, publicPem: publicKey };
}

function serial(): string {
  // Positive: the top bit clear, as DER integers are signed.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f;
  return bytes.toString('hex');
}

function info(name: string, role: Role | 'ca', pem: string, file: string): CertInfo {
  const x = new X509Certificate(pem);
  return { name, role, fingerprint: x.fingerprint256, validTo: new Date(x.validTo).toISOString(), file };
}

async function writeSecret(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, (fh) => fh.writeFile(text), 0o600);
}

/** Creates the installation CA; refuses to replace an existing one (every issued certificate hangs on it). */
export async function initCa(home: string, name = 'accel installation CA'): Promise<CertInfo> {
  const paths = certPaths(home);
  if (existsSync(paths.caKey)) {
    throw new AccelError('ACCEL_CERTS_EXISTS', `a CA already exists in ${paths.dir}`, {
      hint: 'issue certificates with `accel certs issue NAME --role ROLE`; remove the directory to start over',
    });
  }
  makeDirs(paths.issued, { mode: 0o700 });
  const keys = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicPem);
  cert.serialNumber = serial();
  const now = new Date(Date.now() - 60_000);
  cert.validity.notBefore = now;
  cert.validity.notAfter = new Date(now.getTime() + CA_YEARS * 365 * 86_400_000);
  const subject = [
    { shortName: 'CN', value: `${name} ${randomBytes(4).toString('hex')}` },
    { shortName: 'O', value: 'accel' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keys.privatePem), forge.md.sha256.create());
  const pem = forge.pki.certificateToPem(cert);
  await writeSecret(paths.caKey, keys.privatePem);
  await writeFileAtomic(paths.caCert, (fh) => fh.writeFile(pem));
  return info('ca', 'ca', pem, paths.caCert);
}

export interface IssueOptions {
  name: string;
  role: Role;
  /** Extra subjectAltNames: host names or IP addresses (localhost and 127.0.0.1 are always included). */
  san?: string[];
  /** Replace a certificate already issued under this name (otherwise ACCEL_CERTS_EXISTS). */
  force?: boolean;
}

/** Issues a certificate signed by this home's CA into certs/issued/NAME.{crt,key}. */
export async function issueCert(home: string, options: IssueOptions): Promise<CertInfo> {
  const paths = certPaths(home);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(options.name)) {
    throw new AccelError('ACCEL_CERTS_BAD_NAME', `invalid certificate name '${options.name}'`, {
      hint: 'use letters, digits, dot, dash and underscore (e.g. worker-1)',
    });
  }
  if (!(ROLES as readonly string[]).includes(options.role)) {
    throw new AccelError('ACCEL_USAGE_BAD_ROLE', `unknown role '${options.role}'`, {
      hint: 'syncer, worker or client',
    });
  }
  const ca = loadCa(paths);
  const existing = join(paths.issued, `${options.name}.crt`);
  if (!options.force && existsSync(existing)) {
    throw new AccelError(
      'ACCEL_CERTS_EXISTS',
      `a certificate named '${options.name}' was already issued: ${existing}`,
      {
        hint: `bundle it with \`accel certs bundle ${options.name} -o FILE\`, or pass --force to issue a new key and certificate in its place`,
      },
    );
  }
  const keys = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicPem);
  cert.serialNumber = serial();
  const now = new Date(Date.now() - 60_000);
  cert.validity.notBefore = now;
  cert.validity.notAfter = new Date(now.getTime() + LEAF_DAYS * 86_400_000);
  cert.setSubject([
    { shortName: 'CN', value: options.name },
    { shortName: 'O', value: 'accel' },
    { shortName: 'OU', value: `accel-${options.role}` },
  ]);
  cert.setIssuer(ca.cert.subject.attributes);
  const sans = ['localhost', '127.0.0.1', '::1', ...(options.san ?? [])];
  const altNames = [...new Set(sans)].map((s) =>
    /^[\d.]+$/.test(s) || s.includes(':') ? { type: 7, ip: s } : { type: 2, value: s },
  );
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    // A client only ever connects; syncers and workers also serve (the syncer API, a worker's /status).
    { name: 'extKeyUsage', clientAuth: true, serverAuth: options.role !== 'client' },
    { name: 'subjectAltName', altNames },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  const pem = forge.pki.certificateToPem(cert);
  makeDirs(paths.issued, { mode: 0o700 });
  const base = join(paths.issued, options.name);
  await writeSecret(`${base}.key`, keys.privatePem);
  await writeFileAtomic(`${base}.crt`, (fh) => fh.writeFile(pem));
  return info(options.name, options.role, pem, `${base}.crt`);
}

function loadCa(paths: CertPaths): { cert: ReturnType<typeof forge.pki.certificateFromPem>; key: object } {
  try {
    return {
      cert: forge.pki.certificateFromPem(readFileSync(paths.caCert, 'utf8')),
      key: forge.pki.privateKeyFromPem(readFileSync(paths.caKey, 'utf8')),
    };
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    throw new AccelError('ACCEL_CERTS_NO_CA', `no CA in ${paths.dir}`, { hint: 'create one with `accel certs init`' });
  }
}

/** What one machine needs: the CA certificate (not its key), its own certificate and key. */
interface Bundle {
  accelBundle: 1;
  name: string;
  role: Role;
  ca: string;
  cert: string;
  key: string;
}

export async function writeBundle(home: string, name: string, out: string): Promise<CertInfo> {
  const paths = certPaths(home);
  const base = join(paths.issued, name);
  let cert: string;
  let key: string;
  let ca: string;
  try {
    cert = readFileSync(`${base}.crt`, 'utf8');
    key = readFileSync(`${base}.key`, 'utf8');
    ca = readFileSync(paths.caCert, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    throw new AccelError('ACCEL_CERTS_UNKNOWN', `no issued certificate named '${name}' in ${paths.issued}`, {
      hint: 'issue it first: accel certs issue NAME --role worker',
    });
  }
  const role = roleOf(cert);
  if (!role) throw new AccelError('ACCEL_CERTS_NO_ROLE', `${base}.crt carries no accel role`);
  const bundle: Bundle = { accelBundle: 1, name, role, ca, cert, key };
  // The bundle holds a private key: never readable by others, and never half-written.
  await writeFileAtomic(out, (fh) => fh.writeFile(`${JSON.stringify(bundle, null, 2)}\n`), 0o600);
  return info(name, role, cert, out);
}

export async function installBundle(home: string, file: string): Promise<CertInfo> {
  const paths = certPaths(home);
  let bundle: Bundle;
  try {
    bundle = JSON.parse(readFileSync(file, 'utf8')) as Bundle;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new AccelError('ACCEL_CERTS_NO_BUNDLE', `no such file: ${file}`);
    throw new AccelError('ACCEL_CERTS_BAD_BUNDLE', `${file} is not an accel certificate bundle`, { cause: err });
  }
  if (bundle?.accelBundle !== 1 || typeof bundle.cert !== 'string' || typeof bundle.key !== 'string') {
    throw new AccelError('ACCEL_CERTS_BAD_BUNDLE', `${file} is not an accel certificate bundle`, {
      hint: 'make one with `accel certs bundle NAME -o FILE` on the machine that holds the CA',
    });
  }
  const x = new X509Certificate(bundle.cert);
  const ca = new X509Certificate(bundle.ca);
  if (!x.checkIssued(ca) || !x.verify(ca.publicKey)) {
    throw new AccelError('ACCEL_CERTS_BAD_BUNDLE', `the certificate in ${file} is not signed by its CA`);
  }
  if (existsSync(paths.caCert)) {
    const mine = new X509Certificate(readFileSync(paths.caCert, 'utf8'));
    if (mine.fingerprint256 !== ca.fingerprint256) {
      throw new AccelError('ACCEL_CERTS_OTHER_CA', `${paths.caCert} is another installation's CA`, {
        hint: 'install bundles only from the CA this home already trusts, or use another --home',
      });
    }
  }
  makeDirs(paths.dir, { mode: 0o700 });
  await writeSecret(paths.key, bundle.key);
  await writeFileAtomic(paths.cert, (fh) => fh.writeFile(bundle.cert));
  if (!existsSync(paths.caCert)) await writeFile(paths.caCert, bundle.ca);
  return info(bundle.name, bundle.role, bundle.cert, paths.cert);
}
