import { handle } from 'hono/aws-lambda';
import { lambdaServices } from '../lambda.js';
import { createWebhookApp } from './app.js';

/** API Gateway HTTP API (payload v2) entry of the webhook function. */
export const handler = handle(createWebhookApp(await lambdaServices('webhook')));
