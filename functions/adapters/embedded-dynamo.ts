import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';

/** A DynamoDB-compatible server running inside this process. */
export interface EmbeddedDynamo {
  /** `http://127.0.0.1:<port>`, for `createDynamoClient({ endpoint })`. */
  endpoint: string;
  /** Stops the server and closes its database (flushing it to disk when it has a path). */
  stop(): Promise<void>;
}

/** Options for {@link startEmbeddedDynalite}. */
export interface EmbeddedDynamoOptions {
  /** LevelDB directory that keeps the data across restarts; in memory when omitted. */
  path?: string;
  /** Loopback port; a free one when omitted. */
  port?: number;
}

type DynaliteFactory = (options: { path?: string; createTableMs?: number; deleteTableMs?: number }) => Server;

/**
 * Starts dynalite (a dev dependency) on 127.0.0.1 for `npm start` and the tests; a string
 * argument is the LevelDB path. Never used by a Lambda handler: dynalite is required only
 * when this runs, so bundles do not pull it in.
 */
export async function startEmbeddedDynalite(
  pathOrOptions: string | EmbeddedDynamoOptions = {},
): Promise<EmbeddedDynamo> {
  const options = typeof pathOrOptions === 'string' ? { path: pathOrOptions } : pathOrOptions;
  // dynalite ships no types; the factory signature above is all we use.
  const dynalite = createRequire(import.meta.url)('dynalite') as DynaliteFactory;
  if (options.path !== undefined) await mkdir(options.path, { recursive: true });
  const server = dynalite({
    ...(options.path !== undefined ? { path: options.path } : {}),
    createTableMs: 0,
    deleteTableMs: 0,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive sockets of SDK clients would otherwise hold close() open.
        server.closeIdleConnections();
      }),
  };
}
