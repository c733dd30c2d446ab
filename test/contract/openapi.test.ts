import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../support/local-stack.js';

// CONTRACT §7: "It serves the OpenAPI 3.1 document at /openapi.json", and the document must
// agree with the contract: every operation of §4-§6 is in it.

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack();
});

afterAll(async () => {
  await stack?.stop();
});

const OPERATIONS: [string, string][] = [
  ['post', '/v1/sessions'],
  ['post', '/v1/livekit/webhook'],
  ['get', '/v1/admin/tenants'],
  ['get', '/v1/admin/tenants/{tenantId}'],
  ['put', '/v1/admin/tenants/{tenantId}'],
  ['delete', '/v1/admin/tenants/{tenantId}'],
  ['get', '/v1/admin/tenants/{tenantId}/users'],
  ['get', '/v1/admin/tenants/{tenantId}/users/{userId}'],
  ['put', '/v1/admin/tenants/{tenantId}/users/{userId}'],
  ['delete', '/v1/admin/tenants/{tenantId}/users/{userId}'],
  ['post', '/v1/admin/tenants/{tenantId}/users/{userId}/revoke'],
  ['get', '/v1/admin/tenants/{tenantId}/audit'],
  ['get', '/v1/admin/tenants/{tenantId}/sessions'],
];

describe('GET /openapi.json', () => {
  it('serves an OpenAPI 3.1 document, without a token, naming every contract operation', async () => {
    // Act
    const answer = await stack.call('GET', '/openapi.json');

    // Assess
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(answer.json.openapi).toMatch(/^3\.1\./);
    for (const [method, path] of OPERATIONS) {
      expect(answer.json.paths?.[path]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
    }
  });
});
