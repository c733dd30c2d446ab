import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig, refreshUrlOf } from '../../functions/core/config.js';
import { ConfigError } from '../../functions/core/errors.js';
import { refreshAtOf } from '../../functions/core/sealing.js';

// docs/api.md §2, §9: the renewal's configuration and `refresh_at`.

const ring = () => JSON.stringify({ current: 'k', keys: { k: randomBytes(32).toString('base64url') } });
const base = {
  LIVEKIT_URL: 'wss://livekit.example.com',
  LIVEKIT_API_KEY: 'key',
  LIVEKIT_API_SECRET: 'secret',
  DISPATCH_KEYS: ring(),
  STORAGE_KEYS: ring(),
  AUTH_JWKS_URL: 'https://id.example.com/jwks.json',
  AUTH_ISSUER: 'https://id.example.com/',
  AUTH_AUDIENCE: 'aud',
};

describe('refresh_at', () => {
  const server = (expires_at?: number) => ({
    name: 's',
    url: 'https://mcp.example.com',
    transport: 'streamable_http' as const,
    headers: {},
    ...(expires_at === undefined ? {} : { expires_at }),
  });

  it('is iat + CREDENTIALS_REFRESH_SECONDS without expiring credentials', () => {
    expect(refreshAtOf(1000, 900, [server()])).toBe(1900);
  });

  it('is the earliest expires_at − 60 when that comes first, never before iat', () => {
    expect(refreshAtOf(1000, 900, [server(2000), server(1500), server()])).toBe(1440);
    expect(refreshAtOf(1000, 900, [server(1030)])).toBe(1000);
  });
});

describe('CREDENTIALS_REFRESH_SECONDS and PUBLIC_BASE_URL', () => {
  it('default to 900 and, locally, http://localhost:<PORT>', () => {
    const local = loadConfig({ ...base, PORT: '9999' }, 'local');
    expect(local.credentialsRefreshSeconds).toBe(900);
    expect(refreshUrlOf(local)).toBe('http://localhost:9999/v1/worker/credentials');
    // In AWS the Lambda entry refuses to start without it (functions/lambda.ts); the stack sets it.
    expect(loadConfig(base, 'lambda').publicBaseUrl).toBe('http://localhost:8787');
  });

  it('are read, without a trailing slash; AWS refuses a non-https base', () => {
    const c = loadConfig(
      { ...base, CREDENTIALS_REFRESH_SECONDS: '120', PUBLIC_BASE_URL: 'https://api.example.com/' },
      'lambda',
    );
    expect(c.credentialsRefreshSeconds).toBe(120);
    expect(refreshUrlOf(c)).toBe('https://api.example.com/v1/worker/credentials');
    expect(() => loadConfig({ ...base, PUBLIC_BASE_URL: 'http://api.example.com' }, 'lambda')).toThrow(
      /PUBLIC_BASE_URL must use https/,
    );
    expect(() => loadConfig({ ...base, CREDENTIALS_REFRESH_SECONDS: '5' }, 'lambda')).toThrow(ConfigError);
  });

  it('the credentials function needs no LiveKit settings; the others still do', () => {
    const { LIVEKIT_URL: _u, LIVEKIT_API_KEY: _k, LIVEKIT_API_SECRET: _s, ...noLiveKit } = base;
    expect(loadConfig(noLiveKit, 'lambda', { needsLiveKit: false }).livekit.apiKey).toBe('');
    let problems: string[] = [];
    try {
      loadConfig(noLiveKit, 'lambda');
    } catch (err) {
      problems = (err as ConfigError).problems;
    }
    expect(problems).toEqual([
      'LIVEKIT_URL is required',
      'LIVEKIT_API_KEY is required',
      'LIVEKIT_API_SECRET is required',
    ]);
  });
});
