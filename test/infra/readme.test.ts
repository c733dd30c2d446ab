import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { contextDefaults } from '../../infra/context.js';

// infra/README.md's context table states the defaults the stack deploys with; it must not drift.
const readme = readFileSync('infra/README.md', 'utf8');
const row = (key: string) => readme.split('\n').find((line) => line.startsWith(`| \`${key}\``)) ?? '';
const cells = (line: string) => line.split('|').map((c) => c.trim());

describe('infra/README.md context table', () => {
  it('gives the function timeouts and memory the stack deploys', () => {
    const { session, webhook, admin, credentials } = contextDefaults.functions;
    expect(cells(row('sessionTimeoutSeconds'))[3]).toBe(
      `${session.timeoutSeconds}, ${webhook.timeoutSeconds}, ${admin.timeoutSeconds}, ${credentials.timeoutSeconds}`,
    );
    expect(new Set([session.memoryMb, webhook.memoryMb, admin.memoryMb, credentials.memoryMb])).toEqual(
      new Set([512]),
    );
    expect(cells(row('sessionMemoryMb'))[3]).toBe('512');
  });

  it('gives the route throttles the stack deploys', () => {
    for (const route of ['sessions', 'webhook', 'admin', 'credentials'] as const) {
      const { rateLimit, burstLimit } = contextDefaults.throttles[route];
      expect(cells(row(`${route}RateLimit`))[3], route).toBe(`${rateLimit} / ${burstLimit}`);
    }
  });
});
