/**
 * Prints a token the local server (`npm start` without `AUTH_JWKS_URL`) accepts:
 * `npm run dev:token -- --user alice --tenant acme [--admin|--superadmin] [--ttl 3600]`.
 * Uses the dev issuer key under `DATA_DIR` (default `.data`), creating it when missing.
 */
import { parseArgs } from 'node:util';
import { loadOrCreateDevIssuer } from '../functions/adapters/dev-issuer.js';

const usage =
  'usage: npm run dev:token -- --user <id> --tenant <tenant> [--admin | --superadmin] [--ttl <seconds>]';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      user: { type: 'string' },
      tenant: { type: 'string' },
      admin: { type: 'boolean', default: false },
      superadmin: { type: 'boolean', default: false },
      ttl: { type: 'string', default: '3600' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const ttlSeconds = Number(values.ttl);
  const problems: string[] = [];
  if (!values.user) problems.push('--user is required');
  if (!values.tenant && !values.superadmin) problems.push('--tenant is required (except with --superadmin)');
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 7 * 86_400) {
    problems.push('--ttl must be whole seconds from 1 to 604800');
  }
  if (problems.length > 0) throw new Error(`${problems.join('\n')}\n${usage}`);

  const issuer = await loadOrCreateDevIssuer(process.env.DATA_DIR || '.data', {
    tenantClaim: process.env.AUTH_TENANT_CLAIM || undefined,
  });
  const token = await issuer.mint({
    user: values.user!,
    tenant: values.tenant,
    admin: values.admin,
    superadmin: values.superadmin,
    ttlSeconds,
  });
  process.stdout.write(`${token}\n`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
