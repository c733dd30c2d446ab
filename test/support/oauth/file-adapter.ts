import type { Adapter, AdapterPayload } from 'oidc-provider';
import { readJsonFile, writeJsonFile } from '../../../functions/adapters/json-file.js';

interface Entry {
  payload: AdapterPayload;
  /** Milliseconds since the epoch; absent: never expires. */
  expiresAt?: number;
}

/** What the file holds: the provider's signing key and every stored artifact, by `Model:id`. */
interface State {
  signingKey?: Record<string, unknown>;
  entries: Record<string, Entry>;
}

/**
 * oidc-provider's storage in one JSON file (mode 0600: it holds refresh tokens), rewritten on each
 * change. For the demo's authorization server, so that registered clients, grants and refresh
 * tokens outlive a restart on the same issuer, as a real one's do; one process per file.
 */
export class FileAdapterStore {
  readonly #file: string;
  readonly #state: State;

  constructor(file: string) {
    this.#file = file;
    this.#state = readJsonFile<State>(file) ?? { entries: {} };
  }

  /** The signing key kept in the file, or `create()`'s, stored for the next start. */
  async signingKey(create: () => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
    if (this.#state.signingKey === undefined) {
      this.#state.signingKey = await create();
      this.#save();
    }
    return this.#state.signingKey;
  }

  /** The adapter factory oidc-provider's `adapter` option takes. */
  readonly adapter = (model: string): Adapter => {
    const key = (id: string) => `${model}:${id}`;
    const live = (k: string): AdapterPayload | undefined => {
      const entry = this.#state.entries[k];
      if (entry === undefined) return undefined;
      if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
        delete this.#state.entries[k];
        return undefined;
      }
      return entry.payload;
    };
    const findBy = (field: 'uid' | 'userCode', value: string) => {
      for (const k of Object.keys(this.#state.entries)) {
        if (k.startsWith(`${model}:`) && this.#state.entries[k]?.payload[field] === value) return live(k);
      }
      return undefined;
    };
    return {
      upsert: async (id, payload, expiresIn) => {
        this.#state.entries[key(id)] = {
          payload,
          ...(typeof expiresIn === 'number' ? { expiresAt: Date.now() + expiresIn * 1000 } : {}),
        };
        this.#save();
      },
      find: async (id) => live(key(id)),
      findByUid: async (uid) => findBy('uid', uid),
      findByUserCode: async (userCode) => findBy('userCode', userCode),
      consume: async (id) => {
        const payload = live(key(id));
        if (payload === undefined) return;
        payload.consumed = Math.floor(Date.now() / 1000);
        this.#save();
      },
      destroy: async (id) => {
        delete this.#state.entries[key(id)];
        this.#save();
      },
      revokeByGrantId: async (grantId) => {
        for (const [k, entry] of Object.entries(this.#state.entries)) {
          if (entry.payload.grantId === grantId) delete this.#state.entries[k];
        }
        this.#save();
      },
    };
  };

  #save(): void {
    writeJsonFile(this.#file, this.#state);
  }
}
