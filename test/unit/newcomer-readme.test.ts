import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { commandsOf, readmeBlock } from '../../scripts/newcomer.js';

const readme = readFileSync('README.md', 'utf8');

describe("the README's newcomer path (replayed by scripts/newcomer.ts)", () => {
  it('keeps the first screen to the two commands', () => {
    // Act
    const first = /```bash\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';

    // Assess
    expect(commandsOf(first)).toEqual(['npm install && npm start', 'npm test']);
  });

  it('marks the blocks the replay runs, with the commands it knows how to wait for', () => {
    // Act
    const servers = commandsOf(readmeBlock(readme, 'servers'));
    const session = commandsOf(readmeBlock(readme, 'session'));
    const cli = commandsOf(readmeBlock(readme, 'cli'));

    // Assess
    expect(servers).toEqual(['npm install', 'npm start', 'npm run seed:demo']);
    expect(session).toHaveLength(1);
    expect(session[0]).toMatch(
      /^curl -sS -X POST http:\/\/localhost:8787\/v1\/sessions .*<the printed user token>/,
    );
    expect(cli[0]).toMatch(/^export LKMCP_TOKEN=/);
    // Every CLI line runs against the local server as written: no host that cannot resolve.
    expect(cli.join('\n')).not.toMatch(/\.example\b/);
  });

  it('joins continuation lines and drops trailing comments', () => {
    expect(commandsOf('a \\\n  b   # why\n# only a comment\n\nc\n')).toEqual(['a b', 'c']);
  });
});
