import { handle } from 'hono/aws-lambda';
import { withTokenSource } from '../compose.js';
import { lambdaServices } from '../lambda.js';
import { createWebhookApp } from './app.js';

/** API Gateway HTTP API (payload v2) entry of the webhook function. */
export const handler = handle(createWebhookApp(withTokenSource(await lambdaServices('webhook'))));
