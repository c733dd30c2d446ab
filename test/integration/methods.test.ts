import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowOf, routes } from '../../functions/http/routes.js';
import { type LocalStack, startLocalStack } from '../support/local-stack.js';

// RFC 9110 §15.5.6: a method a known path does not serve is 405 with `Allow`, as problem+json
// `method_not_allowed`; an unknown path stays 404. Also: the served document's `servers`.

let stack: LocalStack;
let superToken: string;

beforeAll(async () => {
  stack = await startLocalStack({ PUBLIC_BASE_URL: 'https://api.example.com' });
  superToken = await stack.token({ user: 'ops', superadmin: true });
});

afterAll(async () => {
  await stack?.stop();
});

const concrete = (path: string) =>
  path.replace('{tenantId}', 'acme').replace('{userId}', encodeURIComponent('alice/ü'));
const METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'];

describe('an unknown method on a known path', () => {
  const paths = [...new Set(routes.map((r) => r.path))];

  it.each(paths)('%s answers 405 with Allow for every method it does not serve', async (path) => {
    // Prepare
    const served = routes.filter((r) => r.path === path).map((r) => r.method as string);
    const allow = allowOf(path);

    for (const method of METHODS.filter((m) => !served.includes(m))) {
      // Act
      const answer = await stack.call(method, concrete(path), { token: superToken });

      // Assess
      expect(answer.status, `${method} ${path}`).toBe(405);
      expect(answer.headers.get('allow'), `${method} ${path}`).toBe(allow);
      expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(answer.json).toMatchObject({ status: 405, code: 'method_not_allowed' });
    }
  });

  it('names GET with HEAD, and HEAD on a GET path is served, not refused', async () => {
    // Act
    const head = await stack.call('HEAD', '/openapi.json');

    // Assess
    expect(allowOf('/v1/admin/tenants/{tenantId}')).toBe('GET, HEAD, PUT, DELETE');
    expect(allowOf('/v1/sessions')).toBe('POST');
    expect(head.status).toBe(200);
  });

  it('leaves an unknown path 404 not_found', async () => {
    // Act
    const answer = await stack.call('GET', '/v1/nothing-here', { token: superToken });

    // Assess
    expect(answer.status).toBe(404);
    expect(answer.json).toMatchObject({ code: 'not_found' });
  });
});

describe('GET /openapi.json', () => {
  it('names PUBLIC_BASE_URL as its server', async () => {
    // Act
    const answer = await stack.call('GET', '/openapi.json');

    // Assess
    expect(answer.json.servers).toEqual([{ url: 'https://api.example.com', description: 'PUBLIC_BASE_URL' }]);
  });
});
