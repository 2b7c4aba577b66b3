// npm run keys:generate [-- --out <file>] [--force]
// Writes the secrets a production deployment needs into an env file (deploy/.env by default, which
// deploy/compose.yaml reads through `docker compose --env-file deploy/.env`): the access-token
// signing key (Ed25519, PKCS#8 PEM), APP_SECRET, METRICS_TOKEN and the PostgreSQL password of the
// compose stack. Nothing secret is printed; an existing file is kept unless --force is given.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const USAGE = 'usage: npm run keys:generate -- [--out <file>] [--force]';

let args: { out: string; force: boolean };
try {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'deploy/.env' },
      force: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  args = { out: values.out, force: values.force };
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
  process.exit(64);
}

const file = resolve(args.out);
const token = (bytes: number) => randomBytes(bytes).toString('base64url');

const { privateKey: pem } = generateKeyPairSync('ed25519', {
  privateKeyEncoding: { format: 'pem', type: 'pkcs8' },
  publicKeyEncoding: { format: 'pem', type: 'spki' },
});

// One line per value. The PEM's line breaks are written as `\n` inside single quotes: Compose and
// Node's env-file parser both keep single-quoted text as is, and the configuration turns `\n`
// back into line breaks. The other values are base64url or hex, which need no quoting in an env
// file, a URL (POSTGRES_PASSWORD goes into DATABASE_URL) or a Compose interpolation.
const values: Record<string, string> = {
  AUTH_JWT_PRIVATE_KEY: `'${pem.trim().replace(/\n/g, '\\n')}'`,
  APP_SECRET: token(48),
  METRICS_TOKEN: token(32),
  POSTGRES_PASSWORD: randomBytes(24).toString('hex'),
};

const text = [
  `# Written by npm run keys:generate at ${new Date().toISOString()}. Secrets: keep this file`,
  '# private (git ignores it) and back it up. Replacing AUTH_JWT_PRIVATE_KEY invalidates the access',
  '# tokens it signed unless the old key moves to AUTH_JWT_PREVIOUS_KEYS (docs/identity.md,',
  '# "Signing-key rotation"); PostgreSQL takes POSTGRES_PASSWORD only when its volume is created.',
  '# Settings an operator chooses (PUBLIC_URL, SMTP_URL, MAIL_FROM, TRUST_PROXY...) go below;',
  '# deploy/compose.yaml lists them with their defaults.',
  ...Object.entries(values).map(([key, value]) => `${key}=${value}`),
  '',
].join('\n');

mkdirSync(dirname(file), { recursive: true });
try {
  // `wx`: fails when the file exists, so a second run cannot replace keys in use by accident.
  writeFileSync(file, text, { mode: 0o600, flag: args.force ? 'w' : 'wx' });
  chmodSync(file, 0o600);
} catch (error) {
  if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  process.stderr.write(
    `${relative(process.cwd(), file)} exists: kept as it is. Replacing it changes the signing key ` +
      '(the access tokens it signed stop verifying) and the database password; --force does it.\n',
  );
  process.exit(1);
}

process.stdout.write(
  `wrote ${Object.keys(values).join(', ')} to ${relative(process.cwd(), file)} (mode 600)\n`,
);
