import { handle } from 'hono/aws-lambda';
import { lambdaServices } from '../lambda.js';
import { createAdminApp } from './app.js';

/** API Gateway HTTP API (payload v2) entry of the admin function. */
export const handler = handle(createAdminApp(await lambdaServices('admin')));
