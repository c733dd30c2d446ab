import { ConditionFailedError, DomainError, ValidationError } from './errors.js';

/** What the caller's `If-Match` / `If-None-Match` ask for. */
export type Precondition =
  | { kind: 'none' }
  | { kind: 'create' }
  | { kind: 'match'; any: boolean; versions: number[] };

/** Reads `If-Match` / `If-None-Match` (each as sent, or undefined). */
export function parsePrecondition(
  ifMatch: string | undefined,
  ifNoneMatch: string | undefined,
): Precondition {
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw new ValidationError('Send If-Match or If-None-Match, not both.', {
      details: { errors: [{ path: 'header.if-none-match', message: 'not allowed together with If-Match' }] },
    });
  }
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*') {
      throw new ValidationError('If-None-Match must be *.', {
        details: { errors: [{ path: 'header.if-none-match', message: 'must be *' }] },
      });
    }
    return { kind: 'create' };
  }
  if (ifMatch === undefined) return { kind: 'none' };
  if (ifMatch.trim() === '*') return { kind: 'match', any: true, versions: [] };
  // Strong comparison (RFC 9110 §13.1.1): weak or malformed tags never match.
  const versions = ifMatch
    .split(',')
    .map((t) => /^"([0-9]{1,15})"$/.exec(t.trim())?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
  return { kind: 'match', any: false, versions };
}

/**
 * The version an update must hold, or `'create'`. Throws 412 `version_conflict` on a stale or
 * missing record, 412 `already_exists` on create-only over an existing one, and 428
 * `precondition_required` for an update that names no version.
 */
export function expectedVersion(
  pre: Precondition,
  existing: { version: number } | undefined,
): number | 'create' {
  if (pre.kind === 'create') {
    if (existing !== undefined)
      throw new ConditionFailedError('The resource exists.', { code: 'already_exists' });
    return 'create';
  }
  if (pre.kind === 'none') {
    if (existing !== undefined) {
      throw new DomainError(
        'precondition_required',
        'Updates need If-Match: "<version>" (from the ETag), or If-None-Match: * to create only.',
      );
    }
    return 'create';
  }
  if (existing === undefined || (!pre.any && !pre.versions.includes(existing.version))) {
    throw new ConditionFailedError('The resource changed or does not exist; read it again.', {
      code: 'version_conflict',
    });
  }
  return existing.version;
}

/** DELETE: If-Match is optional; when given it must match. */
export function deleteVersion(pre: Precondition, existing: { version: number }): number | undefined {
  if (pre.kind === 'none') return undefined;
  if (pre.kind === 'create')
    throw new ConditionFailedError('The resource exists.', { code: 'already_exists' });
  return expectedVersion(pre, existing) as number;
}

/** Create when the caller named no version; if another writer created it first, the caller needs a precondition. */
export async function createOrRequirePrecondition<T>(
  create: () => Promise<T>,
  pre: Precondition,
): Promise<T> {
  try {
    return await create();
  } catch (err) {
    if (pre.kind === 'none' && err instanceof ConditionFailedError && err.code === 'already_exists') {
      expectedVersion(pre, { version: 0 });
    }
    throw err;
  }
}
