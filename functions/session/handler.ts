import { handle } from 'hono/aws-lambda';
import { withConnections } from '../compose.js';
import { lambdaServices } from '../lambda.js';
import { createSessionApp } from './app.js';

/** API Gateway HTTP API (payload v2) entry of the session function. */
export const handler = handle(createSessionApp(withConnections(await lambdaServices('session'))));
