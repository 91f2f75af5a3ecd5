// The content blocks of one Anthropic message, built as the answer comes in
// (thinking, text, tool_use), with the stream's content_block_start / _delta /
// _stop events (text_delta, thinking_delta, input_json_delta). A plain answer
// feeds the whole parts through the same steps with the events going nowhere.
import { randomId } from '../openai/serving_engine.js';
import type { ContentBlock } from './protocol.js';

export type Send = (type: string, fields: Record<string, unknown>) => Promise<void>;


type Open = { kind: 'text' | 'thinking' } | { kind: 'tool'; callIndex: number; json: string };

export class MessageBlockBuilder {
  readonly blocks: ContentBlock[] = [];
  private open: Open | null = null;

  constructor(private readonly send: Send) {}

  private get index(): number {
    return this.blocks.length - 1;
  }

  private async start(open: Open, block: ContentBlock): Promise<void> {
    await this.close();
    this.blocks.push(block);
    this.open = open;
    const shown = block.type === 'tool_use' ? { ...block, input: {} } : block.type === 'text' ? { ...block, text: '' } : { ...block, thinking: '' };
    await this.send('content_block_start', { index: this.index, content_block: shown });
  }

  async thinking(delta: string): Promise<void> {
    if (delta === '') return;
    if (this.open?.kind !== 'thinking') await this.start({ kind: 'thinking' }, { type: 'thinking', thinking: '', signature: '' });
    (this.blocks[this.index] as { thinking: string }).thinking += delta;
    await this.send('content_block_delta', { index: this.index, delta: { type: 'thinking_delta', thinking: delta } });
  }

  async text(delta: string): Promise<void> {
    if (delta === '') return;
    if (this.open?.kind !== 'text') await this.start({ kind: 'text' }, { type: 'text', text: '', citations: null });
    (this.blocks[this.index] as { text: string }).text += delta;
    await this.send('content_block_delta', { index: this.index, delta: { type: 'text_delta', text: delta } });
  }

  /** A tool call's piece (the first carries its name); its input is the JSON text of the arguments. */
  async toolCall(callIndex: number, name: string | undefined, args: string): Promise<void> {
    if (this.open?.kind !== 'tool' || this.open.callIndex !== callIndex) {
      await this.start({ kind: 'tool', callIndex, json: '' }, { type: 'tool_use', id: `toolu_${randomId()}`, name: name ?? '', input: {}, caller: { type: 'direct' } });
    }
    if (args === '') return;
    (this.open as { json: string }).json += args;
    await this.send('content_block_delta', { index: this.index, delta: { type: 'input_json_delta', partial_json: args } });
  }

  async close(): Promise<void> {
    const o = this.open;
    if (o === null) return;
    this.open = null;
    if (o.kind === 'tool') {
      const block = this.blocks[this.index] as { input: unknown };
      try {
        block.input = o.json.trim() === '' ? {} : JSON.parse(o.json);
      } catch {
        block.input = {};
      }
    }
    await this.send('content_block_stop', { index: this.index });
  }

  get usedTools(): boolean {
    return this.blocks.some((b) => b.type === 'tool_use');
  }
}
