import { readFile } from 'node:fs/promises';
import { handle } from 'hono/aws-lambda';
import { withConnectionAdmin } from '../compose.js';
import { lambdaServices } from '../lambda.js';
import { createAdminApp } from './app.js';

/** The OpenAPI document, shipped beside the bundle rather than in it (scripts/build.ts copies it). */
const openApiDocument = () => readFile(new URL('./openapi.json', import.meta.url), 'utf8');

/** API Gateway HTTP API (payload v2) entry of the admin function. */
export const handler = handle(
  createAdminApp({ ...withConnectionAdmin(await lambdaServices('admin')), openApiDocument }),
);
