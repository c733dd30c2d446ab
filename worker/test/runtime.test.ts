import { initializeLogger, voice } from '@livekit/agents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMcpToolset } from '../src/mcp-toolset.js';
import { startTestMcpServer, type TestMcpServer, testToken } from './support/mcp-server.js';

const token = testToken();
let mcp: TestMcpServer;

beforeAll(async () => {
  initializeLogger({ pretty: false, level: 'silent' });
  mcp = await startTestMcpServer({ [token]: { id: 'dana', notes: ['dana: water plants'] } });
});

afterAll(async () => {
  await mcp?.close();
});

function outputsOf(result: voice.testing.RunResult) {
  return result.events.flatMap((event) =>
    event.type === 'function_call_output' ? [{ output: event.item.output, isError: event.item.isError }] : [],
  );
}

describe('McpToolset inside a real AgentSession', () => {
  it('is set up by the runtime, called by the LLM, and closed with the session', async () => {
    // Prepare
    const toolset = createMcpToolset(
      {
        name: 'notes',
        url: mcp.url,
        transport: 'streamable_http',
        headers: { Authorization: `Bearer ${token}` },
        allowed_tools: ['whoami', 'notes_search', 'always_fails'],
      },
      { allowLoopbackForTests: true, timeoutMs: 5_000 },
    );
    const llm = new voice.testing.FakeLLM([
      { input: 'who am i', toolCalls: [{ name: 'whoami', args: {} }] },
      { input: 'my notes', toolCalls: [{ name: 'notes_search', args: { query: 'water' } }] },
      { input: 'break', toolCalls: [{ name: 'always_fails', args: {} }] },
      { input: 'forbidden', toolCalls: [{ name: 'delete_everything', args: {} }] },
    ]);
    const session = new voice.AgentSession({ llm, tools: [toolset] });

    try {
      // Act
      await session.start({ agent: new voice.Agent({ instructions: 'test agent' }) });
      const who = session.run({ userInput: 'who am i' });
      await who.wait();
      const notes = session.run({ userInput: 'my notes' });
      await notes.wait();
      const broken = session.run({ userInput: 'break' });
      await broken.wait();
      const forbidden = session.run({ userInput: 'forbidden' });
      await forbidden.wait();

      // Assess
      expect(outputsOf(who)).toEqual([{ output: JSON.stringify('user:dana'), isError: false }]);
      expect(outputsOf(notes)).toEqual([{ output: JSON.stringify('dana: water plants'), isError: false }]);
      expect(outputsOf(broken)).toEqual([{ output: 'quota exhausted for this user', isError: true }]);
      // A tool outside allowed_tools does not exist for the runtime.
      expect(outputsOf(forbidden)).toEqual([
        expect.objectContaining({ isError: true, output: expect.stringContaining('delete_everything') }),
      ]);
    } finally {
      await session.close();
    }
    expect(toolset.tools).toHaveLength(0);
  });
});
