/** One field that failed validation, as the API reports it (`details.errors`). */
export interface FieldProblem {
  path: string;
  message: string;
}

/** The API answered with an error (an RFC 9457 problem document when it could be read). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly errors: FieldProblem[];
  readonly fields: string[];
  readonly retryAfter: string | undefined;

  constructor(
    status: number,
    body: Record<string, unknown> | undefined,
    retryAfter: string | undefined,
    options?: { cause?: unknown },
  ) {
    const code = typeof body?.code === 'string' ? body.code : `http_${status}`;
    const detail = typeof body?.detail === 'string' ? body.detail : `The API answered HTTP ${status}.`;
    super(`${detail} (${code}, HTTP ${status})`, options);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.errors = Array.isArray(body?.errors) ? (body.errors as FieldProblem[]) : [];
    this.fields = Array.isArray(body?.fields) ? (body.fields as string[]) : [];
    this.retryAfter = retryAfter;
  }
}

/** The API could not be reached at all (connection refused, DNS, timeout). */
export class UnreachableError extends Error {
  constructor(baseUrl: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot reach ${baseUrl} (${reason})`, options);
    this.name = 'UnreachableError';
  }
}

/** A successful answer: status, body (parsed JSON or undefined) and the version from `ETag`. */
export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  /** The record version of `ETag: "<n>"`, when the answer has one. */
  version: string | undefined;
}

/** Options of {@link AdminClient}. */
export interface AdminClientOptions {
  /** Base URL, e.g. `http://localhost:8787` (no trailing path). */
  baseUrl: string;
  /** The admin bearer JWT. */
  token: string;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** Request options of {@link AdminClient.request}. */
export interface RequestOptions {
  body?: unknown;
  /** Sends `If-Match: "<version>"`. */
  ifMatch?: string;
  /** Sends `If-None-Match: *` (create only). */
  createOnly?: boolean;
  query?: Record<string, string | undefined>;
}

/** Path of a tenant (ids are URL-encoded). */
export function tenantPath(tenantId: string): string {
  return `/v1/admin/tenants/${encodeURIComponent(tenantId)}`;
}

/** Path of a user of a tenant (user ids are issuer `sub`s and may hold any printable character). */
export function userPath(tenantId: string, userId: string): string {
  return `${tenantPath(tenantId)}/users/${encodeURIComponent(userId)}`;
}

function versionOf(etag: string | null): string | undefined {
  return etag === null ? undefined : (/^"([0-9]+)"$/.exec(etag.trim())?.[1] ?? undefined);
}

/**
 * A small client of the admin API (docs/api.md §6): bearer token, JSON in and out, problem+json
 * errors as {@link ApiError}, `ETag` versions surfaced. The token is sent only as a header and
 * never appears in an error message.
 */
export class AdminClient {
  readonly baseUrl: string;
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: AdminClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#fetch = options.fetch ?? fetch;
  }

  /** Sends one request; throws {@link ApiError} for any status ≥ 400, {@link UnreachableError} without an answer. */
  async request<T = unknown>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<ApiResponse<T>> {
    const url = new URL(`${this.baseUrl}${path}`);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#token}`,
      accept: 'application/json, application/problem+json',
    };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.ifMatch !== undefined) headers['if-match'] = `"${options.ifMatch}"`;
    if (options.createOnly) headers['if-none-match'] = '*';

    let res: Response;
    try {
      res = await this.#fetch(url, {
        method,
        headers,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const reason =
        cause?.code ??
        (err instanceof Error && err.name === 'TimeoutError'
          ? 'timed out'
          : (cause?.message ?? 'network error'));
      throw new UnreachableError(this.baseUrl, reason, { cause: err });
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (res.status >= 400) {
      const problem =
        typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : undefined;
      throw new ApiError(res.status, problem, res.headers.get('retry-after') ?? undefined);
    }
    return { status: res.status, body: body as T, version: versionOf(res.headers.get('etag')) };
  }
}
