import type { ResolvedAddress } from '../../../functions/core/url-guard.js';

/** A public-looking address (TEST-NET ranges are refused by the URL rule, so this is not one). */
export const PUBLIC_ADDRESS = '93.184.215.14';

/** A resolver under the test's control: answers per name, per call, and counts its calls. */
export class ScriptedResolver {
  readonly calls: string[] = [];
  constructor(private readonly answers: Record<string, readonly string[][]>) {}

  /** Answers the n-th lookup of `host` with the n-th scripted list (the last one repeats). */
  readonly resolve = async (host: string): Promise<ResolvedAddress[]> => {
    const n = this.calls.filter((h) => h === host).length;
    this.calls.push(host);
    const script = this.answers[host];
    if (script === undefined || script.length === 0) throw new Error('ENOTFOUND');
    const list = script[Math.min(n, script.length - 1)] ?? [];
    return list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

  /** How often `host` was resolved. */
  count(host: string): number {
    return this.calls.filter((h) => h === host).length;
  }
}

/**
 * The dial map for {@link ScriptedResolver} tests: the one public address the test checked is
 * dialled on loopback; any other address throws, so a second resolution could never reach it.
 */
export function dialToLoopback(allowed: string = PUBLIC_ADDRESS): (a: ResolvedAddress) => ResolvedAddress {
  return (checked) => {
    if (checked.address === '127.0.0.1' || checked.address === '::1') return checked;
    if (checked.address !== allowed) throw new Error(`test dial refused for an unchecked address`);
    return { address: '127.0.0.1', family: 4 };
  };
}
