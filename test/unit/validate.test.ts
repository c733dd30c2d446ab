import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { maxLength, optional, strictObject, string } from 'zod/mini';
import { bodyLimitProblem } from '../../functions/http/body-limit.js';
import { withProblemHandling } from '../../functions/http/problem.js';
import { parseBody, validate } from '../../functions/http/validate.js';

const schema = strictObject({ token: string().check(maxLength(4)), note: optional(string()) });

describe('validate', () => {
  it('lists failing fields with messages that never echo the input', () => {
    // Act
    let caught: unknown;
    try {
      validate(schema, { token: 'SECRET-VALUE', extra: 'SECRET-2', note: 5 });
    } catch (err) {
      caught = err;
    }

    // Assess
    expect(caught).toMatchObject({
      code: 'invalid_request',
      details: {
        errors: [
          { path: 'token', message: 'at most 4 characters' },
          { path: 'note', message: 'expected string' },
          { path: '', message: 'unknown field extra' },
        ],
      },
    });
    expect(JSON.stringify(caught)).not.toContain('SECRET');
  });
});

describe('parseBody and bodyLimitProblem', () => {
  const app = withProblemHandling(new Hono());
  app.use('*', bodyLimitProblem(64));
  app.post('/x', async (c) => c.json(await parseBody(c, schema)));
  app.post('/empty-ok', async (c) => c.json(await parseBody(c, schema, { emptyAs: { token: 'd' } })));

  it.each([
    ['{"token":', 'is not valid JSON'],
    ['[1]', 'expected object'],
    ['', 'a JSON object is required'],
  ])('answers 422 for the body %j', async (body, message) => {
    // Act
    const res = await app.request('/x', { method: 'POST', body });

    // Assess
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ code: 'invalid_request', errors: [{ path: '', message }] });
  });

  it('accepts a valid body, and an empty one when emptyAs is given', async () => {
    // Act
    const ok = await app.request('/x', { method: 'POST', body: '{"token":"ab"}' });
    const empty = await app.request('/empty-ok', { method: 'POST' });
    const blank = await app.request('/empty-ok', { method: 'POST', body: ' \r\n\t' });

    // Assess
    expect(await ok.json()).toEqual({ token: 'ab' });
    expect(await empty.json()).toEqual({ token: 'd' });
    expect(await blank.json()).toEqual({ token: 'd' });
  });

  // Found by scripts/schemathesis.sh: `trim()` took a form feed for an empty body.
  it.each(['\f', '\u00a0', '\u2028', '\v'])(
    'refuses %j, whitespace that is no JSON, even where empty is allowed',
    async (body) => {
      // Act
      const res = await app.request('/empty-ok', { method: 'POST', body });

      // Assess
      expect(res.status).toBe(422);
      expect(await res.json()).toMatchObject({
        code: 'invalid_request',
        errors: [{ path: '', message: 'is not valid JSON' }],
      });
    },
  );

  it('refuses a body over the limit with 413 payload_too_large before parsing', async () => {
    // Act
    const res = await app.request('/x', { method: 'POST', body: JSON.stringify({ token: 'x'.repeat(100) }) });

    // Assess
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({ code: 'payload_too_large' });
  });
});
