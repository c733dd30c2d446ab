import { readdir, readFile } from 'node:fs/promises';
import { SourceMap } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A V8 `.cpuprofile` (the parts read here). */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  }[];
  samples: number[];
  timeDeltas: number[];
}

/** The package (or our folder) a bundled source path belongs to. */
function groupOf(source: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(source)?.[1];
  if (pkg) return pkg;
  const parts = source.replace(/^(\.\.\/)+/, '').split('/');
  return parts.slice(0, 2).join('/');
}

/**
 * Self CPU time of every `.cpuprofile` under `dir`, grouped by package through the bundles'
 * source maps (node internals, GC and idle as their own groups), averaged per profile, ms.
 */
export async function selfTimeByPackage(dir: string): Promise<{ group: string; ms: number }[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  const maps = new Map<string, SourceMap | null>();
  const totals = new Map<string, number>();
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
    const self = new Map<number, number>();
    for (const [i, id] of profile.samples.entries()) {
      self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
    }
    for (const node of profile.nodes) {
      const us = self.get(node.id);
      if (!us) continue;
      const { url, lineNumber, columnNumber, functionName } = node.callFrame;
      let group: string;
      if (url.startsWith('file:') && url.endsWith('.mjs')) {
        let map = maps.get(url);
        if (map === undefined) {
          try {
            map = new SourceMap(JSON.parse(await readFile(`${fileURLToPath(url)}.map`, 'utf8')));
          } catch {
            map = null;
          }
          maps.set(url, map);
        }
        const entry = map?.findEntry(lineNumber, columnNumber) as { originalSource?: string } | undefined;
        group = entry?.originalSource ? groupOf(entry.originalSource) : 'bundle (unmapped)';
      } else if (url.startsWith('node:') || url.startsWith('internal')) group = 'node internals';
      else group = functionName ? `(${functionName.replace(/[()]/g, '')})` : '(native)';
      totals.set(group, (totals.get(group) ?? 0) + us);
    }
  }
  return [...totals]
    .map(([group, us]) => ({ group, ms: Math.round(us / 10 / Math.max(1, files.length)) / 100 }))
    .sort((a, b) => b.ms - a.ms);
}
