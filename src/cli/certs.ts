import { resolve } from 'node:path';
import { Command } from 'commander';
import { AccelError } from '../core/errors.ts';
import { type CertInfo, initCa, installBundle, issueCert, type Role, writeBundle } from '../net/tls.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

function show(verb: string, c: CertInfo) {
  return dataResult(c, () =>
    [
      `${verb} ${c.role} certificate '${c.name}': ${c.file}`,
      `  sha256 ${c.fingerprint}`,
      `  expires ${c.validTo}`,
    ].join('\n'),
  );
}

export function certsCommand(runner: Runner): Command {
  const certs = new Command('certs')
    .description('the installation CA and the farm certificates (mutual TLS)')
    .addHelpText(
      'after',
      `
Examples:
  $ accel certs init                                         CA in $ACCEL_HOME/certs (keys 0600)
  $ accel certs issue build1 --role worker --san build1,10.0.0.7
  $ accel certs bundle build1 -o build1.json                 everything build1 needs, in one file
  $ accel certs install build1.json                          on build1`,
    );
  certs
    .command('init')
    .description('create the installation CA')
    .action(runner.action(async (g) => show('created', await initCa(g.home))));
  certs
    .command('issue')
    .description('issue a certificate signed by the installation CA')
    .argument('<name>', 'machine name, e.g. build1')
    .requiredOption('--role <role>', 'syncer, worker or client')
    .option('--san <names>', 'extra host names and IP addresses, comma-separated')
    .option('--force', 'replace a certificate already issued under this name')
    .action(
      runner.action(async (g, name: string, flags: { role: string; san?: string; force?: boolean }) => {
        const san =
          flags.san
            ?.split(',')
            .map((s) => s.trim())
            .filter(Boolean) ?? [];
        return show(
          'issued',
          await issueCert(g.home, { name, role: flags.role as Role, san, force: flags.force === true }),
        );
      }),
    );
  certs
    .command('bundle')
    .description('pack the CA certificate and one issued certificate with its key into one file (0600)')
    .argument('<name>', 'an issued certificate')
    .requiredOption('-o, --output <file>', 'where to write the bundle')
    .action(
      runner.action(async (g, name: string, flags: { output: string }) =>
        show('bundled', await writeBundle(g.home, name, resolve(flags.output))),
      ),
    );
  certs
    .command('install')
    .description("install a bundle as this machine's certificate")
    .argument('<file>', 'a bundle from `accel certs bundle`')
    .action(
      runner.action(async (g, file: string) => {
        if (!file) throw new AccelError('ACCEL_USAGE_NO_FILE', 'no bundle file given');
        return show('installed', await installBundle(g.home, resolve(file)));
      }),
    );
  return certs;
}
