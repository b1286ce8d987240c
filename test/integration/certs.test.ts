import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runAccel, tempDir } from '../helpers.ts';

test('certs: init, issue with a role, bundle and install on another home; keys are 0600', async (t) => {
  const dir = tempDir(t);
  const ca = join(dir, 'ca');
  const r = await runAccel(['--home', ca, '--json', 'certs', 'init']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(JSON.parse(r.stdout.toString()).fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.equal(statSync(join(ca, 'certs', 'ca.key')).mode & 0o777, 0o600);
  const again = await runAccel(['--home', ca, 'certs', 'init']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /ACCEL_CERTS_EXISTS/);

  const issued = await runAccel([
    '--home',
    ca,
    'certs',
    'issue',
    'build1',
    '--role',
    'worker',
    '--san',
    'build1,10.0.0.7',
  ]);
  assert.equal(issued.code, 0, issued.stderr);
  assert.match(
    issued.stdout.toString(),
    /issued worker certificate 'build1'[\s\S]*sha256 [0-9A-F:]+[\s\S]*expires 20\d\d-/,
  );
  const cert = new X509Certificate(readFileSync(join(ca, 'certs', 'issued', 'build1.crt')));
  assert.match(cert.subject, /OU=accel-worker/);
  assert.match(cert.subjectAltName ?? '', /DNS:build1.*IP Address:10\.0\.0\.7/);
  assert.ok(cert.checkIssued(new X509Certificate(readFileSync(join(ca, 'certs', 'ca.crt')))));
  assert.equal(statSync(join(ca, 'certs', 'issued', 'build1.key')).mode & 0o777, 0o600);

  const bundle = join(dir, 'build1.json');
  assert.equal((await runAccel(['--home', ca, 'certs', 'bundle', 'build1', '-o', bundle])).code, 0);
  assert.equal(statSync(bundle).mode & 0o777, 0o600);
  // A line of the CA key is base64 (`+`, `/`): looked for as text, not as a pattern.
  const keyLine = readFileSync(join(ca, 'certs', 'ca.key'), 'utf8').split('\n')[1] as string;
  assert.ok(!readFileSync(bundle, 'utf8').includes(keyLine), 'the bundle does not carry the CA key');
  const w = join(dir, 'w');
  const inst = await runAccel(['--home', w, 'certs', 'install', bundle]);
  assert.equal(inst.code, 0, inst.stderr);
  assert.equal(statSync(join(w, 'certs', 'identity.key')).mode & 0o777, 0o600);
  assert.equal(new X509Certificate(readFileSync(join(w, 'certs', 'identity.crt'))).fingerprint256, cert.fingerprint256);
});

test('certs: bad role, unknown name, a broken bundle and another CA are refused with codes', async (t) => {
  const dir = tempDir(t);
  const ca = join(dir, 'ca');
  const other = join(dir, 'other');
  assert.equal((await runAccel(['--home', ca, 'certs', 'init'])).code, 0);
  assert.equal((await runAccel(['--home', other, 'certs', 'init'])).code, 0);
  const bad = await runAccel(['--home', ca, 'certs', 'issue', 'x', '--role', 'admin']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /ACCEL_USAGE_BAD_ROLE/);
  const noCa = await runAccel(['--home', join(dir, 'none'), 'certs', 'issue', 'x', '--role', 'client']);
  assert.match(noCa.stderr, /ACCEL_CERTS_NO_CA/);
  const unknown = await runAccel(['--home', ca, 'certs', 'bundle', 'nope', '-o', join(dir, 'n.json')]);
  assert.match(unknown.stderr, /ACCEL_CERTS_UNKNOWN/);
  writeFileSync(join(dir, 'junk.json'), '{"hello": 1}');
  const junk = await runAccel(['--home', join(dir, 'w'), 'certs', 'install', join(dir, 'junk.json')]);
  assert.equal(junk.code, 1);
  assert.match(junk.stderr, /ACCEL_CERTS_BAD_BUNDLE/);
  assert.equal((await runAccel(['--home', ca, 'certs', 'issue', 'c', '--role', 'client'])).code, 0);
  assert.equal((await runAccel(['--home', ca, 'certs', 'bundle', 'c', '-o', join(dir, 'c.json')])).code, 0);
  const foreign = await runAccel(['--home', other, 'certs', 'install', join(dir, 'c.json')]);
  assert.equal(foreign.code, 1);
  assert.match(foreign.stderr, /ACCEL_CERTS_OTHER_CA/);
});
