// A Lambda execution environment in miniature, run as a plain Node child process (no tsx, no
// test code): `node test/support/lambda-runner.mjs <bundle.mjs>` imports the bundle as the Node
// runtime does (its top-level await is the cold start), then invokes `handler(event, context)`
// for every `{ id, event }` the parent sends over IPC and answers `{ type, id, result | error }`.
// A failed import is reported as `{ type: 'init-error', error }` and the process exits 1.
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const bundle = process.argv[2];
const timeoutMs = Number(process.env.RUNNER_TIMEOUT_MS ?? 25_000);

/** The error fields a Lambda runtime reports (errorType, errorMessage) plus the domain code. */
function describe(error) {
  return {
    name: error?.name,
    constructorName: error?.constructor?.name,
    code: error?.code,
    message: String(error?.message ?? error),
  };
}

function send(message) {
  return new Promise((resolve) => process.send(message, () => resolve()));
}

let handler;
try {
  ({ handler } = await import(pathToFileURL(bundle).href));
} catch (error) {
  await send({ type: 'init-error', error: describe(error) });
  process.exit(1);
}
if (typeof handler !== 'function') {
  await send({ type: 'init-error', error: { name: 'TypeError', message: 'handler is not exported' } });
  process.exit(1);
}

const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'artifact-test';
process.on('message', async ({ id, event }) => {
  const deadline = Date.now() + timeoutMs;
  const awsRequestId = randomUUID();
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:123456789012:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `2026/11/29/[$LATEST]${awsRequestId.replace(/-/g, '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done() {},
    fail() {},
    succeed() {},
  };
  try {
    const result = await handler(event, context);
    await send({ type: 'result', id, result });
  } catch (error) {
    await send({ type: 'error', id, error: describe(error) });
  }
});
await send({ type: 'ready' });
