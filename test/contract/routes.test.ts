import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { Hono } from 'hono';
import { afterAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../functions/admin/app.js';
import { createServices, withConnections } from '../../functions/compose.js';
import { loadConfig } from '../../functions/core/config.js';
import { silentLog } from '../../functions/core/log.js';
import { createCredentialsApp } from '../../functions/credentials/app.js';
import {
  ADMIN_PROXY_PATH,
  gatewayRoutes,
  type Route,
  type RouteFunction,
  routes,
} from '../../functions/http/routes.js';
import { sourceOpenApiDocument } from '../../functions/local.js';
import { createSessionApp } from '../../functions/session/app.js';
import { createWebhookApp } from '../../functions/webhook/app.js';
import { stackPropsFromContext } from '../../infra/context.js';
import { LiveKitMcpDispatchStack, routeKeys } from '../../infra/stack.js';
import { functionNames } from '../../scripts/esbuild-options.js';

// One route list (functions/http/routes.ts) for the apps, the OpenAPI document and the stack:
// every route the apps serve is in the list, the document and the stack, and vice versa.

const keyring = (kid: string) =>
  JSON.stringify({ current: kid, keys: { [kid]: randomBytes(32).toString('base64url') } });
const services = withConnections(
  createServices(
    loadConfig(
      {
        LIVEKIT_URL: 'wss://livekit.example.com',
        LIVEKIT_API_KEY: 'key',
        LIVEKIT_API_SECRET: 'secret',
        DISPATCH_KEYS: keyring('d1'),
        STORAGE_KEYS: keyring('s1'),
        AUTH_JWKS_URL: 'https://issuer.example.com/.well-known/jwks.json',
        AUTH_ISSUER: 'https://issuer.example.com/',
        AUTH_AUDIENCE: 'livekit-mcp-dispatch',
      },
      'lambda',
    ),
    silentLog,
  ),
);
const apps: Record<RouteFunction, Hono> = {
  session: createSessionApp(services) as unknown as Hono,
  webhook: createWebhookApp(services) as unknown as Hono,
  admin: createAdminApp({ ...services, openApiDocument: sourceOpenApiDocument }) as unknown as Hono,
  credentials: createCredentialsApp(services) as unknown as Hono,
};

const label = (r: Pick<Route, 'method' | 'path'>) => `${r.method} ${r.path}`;
const listed = (fn?: RouteFunction) =>
  routes
    .filter((r) => fn === undefined || r.fn === fn)
    .map(label)
    .sort();

/** What an app serves: its method handlers (middleware and the 405 fallbacks are `ALL`), OpenAPI-style. */
function served(app: Hono): string[] {
  const out = new Set<string>();
  for (const r of app.routes) {
    if (r.method === 'ALL') continue;
    out.add(`${r.method} ${r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
  }
  return [...out].sort();
}

const doc = JSON.parse(readFileSync('functions/openapi/openapi.json', 'utf8')) as {
  paths: Record<string, Record<string, unknown>>;
};
const documented = Object.entries(doc.paths)
  .flatMap(([path, item]) =>
    Object.keys(item)
      .filter((k) => ['get', 'put', 'post', 'delete', 'patch'].includes(k))
      .map((m) => `${m.toUpperCase()} ${path}`),
  )
  .sort();

const functionsDir = mkdtempSync(join(tmpdir(), 'lkmcp-routes-'));
afterAll(() => rmSync(functionsDir, { recursive: true, force: true }));
function synthRoutes(): { key: string; fn: string }[] {
  for (const name of functionNames) {
    mkdirSync(join(functionsDir, name), { recursive: true });
    writeFileSync(join(functionsDir, name, 'index.mjs'), 'export const handler = async () => ({});\n');
  }
  const context: Record<string, unknown> = {
    livekitUrl: 'wss://livekit.example.com',
    authJwksUrl: 'https://id.example.com/.well-known/jwks.json',
    authIssuer: 'https://id.example.com/',
    authAudience: 'livekit-mcp-dispatch',
    functionsDir,
  };
  const stack = new LiveKitMcpDispatchStack(
    new App(),
    'Routes',
    stackPropsFromContext((k) => context[k]),
  );
  const resources = Template.fromStack(stack).toJSON().Resources as Record<
    string,
    { Type: string; Properties: Record<string, unknown> }
  >;
  const fnOfIntegration = (ref: string) => {
    const uri = resources[ref]!.Properties.IntegrationUri as { 'Fn::GetAtt': string[] };
    const logicalId = uri['Fn::GetAtt'][0]!;
    const name = functionNames.find(
      (n) =>
        stack.getLogicalId(
          stack.functions[n].function.node.defaultChild as unknown as import('aws-cdk-lib').CfnElement,
        ) === logicalId,
    );
    return name ?? logicalId;
  };
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::ApiGatewayV2::Route')
    .map((r) => {
      const target = (r.Properties.Target as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1][1] as {
        Ref: string;
      };
      return { key: r.Properties.RouteKey as string, fn: fnOfIntegration(target.Ref) };
    });
}

/** Whether an API Gateway route key sends `method path` to its integration. */
function covers(key: string, method: string, path: string): boolean {
  const [m, p] = key.split(' ') as [string, string];
  if (m !== 'ANY' && m !== method) return false;
  if (p === ADMIN_PROXY_PATH) return path.startsWith('/v1/admin/');
  return p === path;
}

describe('the route list', () => {
  it('is what each app serves, route for route', () => {
    for (const fn of Object.keys(apps) as RouteFunction[]) {
      expect(served(apps[fn]), fn).toEqual(listed(fn));
    }
  });

  it('is what the OpenAPI document describes, operation for operation', () => {
    expect(documented).toEqual(listed());
  });

  it('is what the stack routes, each route to the function that serves it, under its throttle', () => {
    // Act
    const deployed = synthRoutes();

    // Assess: every listed route reaches its function through a route key of the stack ...
    for (const r of routes) {
      const via = deployed.filter((d) => covers(d.key, r.method, r.path));
      expect(via.length, label(r)).toBeGreaterThan(0);
      for (const d of via) expect(d.fn, label(r)).toBe(r.fn);
    }
    // ... and the stack routes exactly what the list makes, nothing that serves no listed route.
    expect(deployed.map((d) => d.key).sort()).toEqual(
      gatewayRoutes()
        .map((g) => g.key)
        .sort(),
    );
    for (const d of deployed) {
      const [m, p] = d.key.split(' ') as [string, string];
      expect(
        routes.some((r) => covers(d.key, r.method, r.path) || (m === 'ANY' && r.path === p)),
        d.key,
      ).toBe(true);
    }
    for (const key of Object.values(routeKeys)) expect(deployed.map((d) => d.key)).toContain(key);
  });

  it('gives each gateway route the throttle class of the routes it serves', () => {
    for (const g of gatewayRoutes()) {
      const served = routes.filter((r) => covers(g.key, r.method, r.path));
      expect(served.length, g.key).toBeGreaterThan(0);
      for (const r of served) expect(r.throttle, `${g.key} ⊇ ${label(r)}`).toBe(g.throttle);
    }
  });
});
