// The slice of node-forge accel uses (certificate building and signing); @types/node-forge is not a dependency.
declare module 'node-forge' {
  interface CertAttribute {
    name?: string;
    shortName?: string;
    value: string;
  }
  interface Certificate {
    publicKey: object;
    serialNumber: string;
    validity: { notBefore: Date; notAfter: Date };
    subject: { attributes: CertAttribute[] };
    setSubject(attrs: CertAttribute[]): void;
    setIssuer(attrs: CertAttribute[]): void;
    setExtensions(exts: object[]): void;
    sign(key: object, md: object): void;
  }
  const forge: {
    pki: {
      createCertificate(): Certificate;
      certificateFromPem(pem: string): Certificate;
      certificateToPem(cert: Certificate): string;
      privateKeyFromPem(pem: string): object;
      publicKeyFromPem(pem: string): object;
    };
    md: { sha256: { create(): object } };
  };
  export default forge;
}
