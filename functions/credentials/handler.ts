import { handle } from 'hono/aws-lambda';
import { withTokenSource } from '../compose.js';
import { lambdaServices } from '../lambda.js';
import { createCredentialsApp } from './app.js';

/** API Gateway HTTP API (payload v2) entry of the credentials function. */
export const handler = handle(createCredentialsApp(withTokenSource(await lambdaServices('credentials'))));
