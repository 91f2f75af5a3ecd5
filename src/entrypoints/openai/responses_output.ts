// The output items of one response, built as the answer comes in (reasoning,
// then the message's text, then function calls), with the Responses stream's
// events for each step: output_item.added / content_part.added / *.delta, and on
// closing *.done, content_part.done, output_item.done. A plain answer feeds the
// whole parts through the same steps with the events going nowhere.
import type { FunctionCallOutput, OutputItem, OutputMessage, OutputText, ReasoningOutput } from './protocol_responses.js';
import { randomId } from './serving_engine.js';

/** Sends one event of the stream (type and its fields; the sequence number is added by the sender). */
export type Emit = (type: string, fields: Record<string, unknown>) => Promise<void>;

/** A function call's piece: its first one carries the call id and name. */
export interface CallDelta {
  index: number;
  id?: string;
  name?: string;
  arguments: string;
}

type Open =
  | { kind: 'reasoning'; item: ReasoningOutput; index: number }
  | { kind: 'message'; item: OutputMessage; part: OutputText; index: number }
  | { kind: 'call'; item: FunctionCallOutput; index: number; callIndex: number };

export class ResponseOutputBuilder {
  private open: Open | null = null;

  constructor(
    private readonly output: OutputItem[],
    private readonly emit: Emit,
  ) {}

  private async start(o: Open): Promise<void> {
    await this.close('completed');
    this.output.push(o.item);
    this.open = o;
    await this.emit('response.output_item.added', { output_index: o.index, item: structuredClone(o.item) });
  }

  async reasoning(delta: string): Promise<void> {
    if (delta === '') return;
    if (this.open?.kind !== 'reasoning') {
      const item: ReasoningOutput = { type: 'reasoning', id: `rs_${randomId()}`, summary: [], content: [], status: 'in_progress' };
      await this.start({ kind: 'reasoning', item, index: this.output.length });
      item.content.push({ type: 'reasoning_text', text: '' });
      await this.emit('response.content_part.added', { item_id: item.id, output_index: this.open!.index, content_index: 0, part: { type: 'reasoning_text', text: '' } });
    }
    const o = this.open as Extract<Open, { kind: 'reasoning' }>;
    o.item.content[0].text += delta;
    await this.emit('response.reasoning_text.delta', { item_id: o.item.id, output_index: o.index, content_index: 0, delta });
  }

  async text(delta: string): Promise<void> {
    if (delta === '') return;
    if (this.open?.kind !== 'message') {
      const item: OutputMessage = { type: 'message', id: `msg_${randomId()}`, role: 'assistant', status: 'in_progress', content: [] };
      const part: OutputText = { type: 'output_text', text: '', annotations: [], logprobs: [] };
      await this.start({ kind: 'message', item, part, index: this.output.length });
      item.content.push(part);
      await this.emit('response.content_part.added', { item_id: item.id, output_index: this.open!.index, content_index: 0, part: structuredClone(part) });
    }
    const o = this.open as Extract<Open, { kind: 'message' }>;
    o.part.text += delta;
    await this.emit('response.output_text.delta', { item_id: o.item.id, output_index: o.index, content_index: 0, delta, logprobs: [] });
  }

  async call(d: CallDelta): Promise<void> {
    if (this.open?.kind !== 'call' || this.open.callIndex !== d.index) {
      const item: FunctionCallOutput = {
        type: 'function_call', id: `fc_${randomId()}`, call_id: d.id ?? `call_${randomId()}`, name: d.name ?? '', arguments: '', status: 'in_progress',
      };
      await this.start({ kind: 'call', item, index: this.output.length, callIndex: d.index });
    }
    const o = this.open as Extract<Open, { kind: 'call' }>;
    if (d.arguments === '') return;
    o.item.arguments += d.arguments;
    await this.emit('response.function_call_arguments.delta', { item_id: o.item.id, output_index: o.index, delta: d.arguments });
  }

  /** Closes the open item with `status` ('incomplete' when the output was cut or cancelled). */
  async close(status: 'completed' | 'incomplete'): Promise<void> {
    const o = this.open;
    if (o === null) return;
    this.open = null;
    o.item.status = status;
    const at = { item_id: o.item.id, output_index: o.index };
    if (o.kind === 'reasoning') {
      const part = o.item.content[0];
      await this.emit('response.reasoning_text.done', { ...at, content_index: 0, text: part.text });
      await this.emit('response.content_part.done', { ...at, content_index: 0, part: structuredClone(part) });
    } else if (o.kind === 'message') {
      await this.emit('response.output_text.done', { ...at, content_index: 0, text: o.part.text, logprobs: [] });
      await this.emit('response.content_part.done', { ...at, content_index: 0, part: structuredClone(o.part) });
    } else {
      await this.emit('response.function_call_arguments.done', { ...at, name: o.item.name, arguments: o.item.arguments });
    }
    await this.emit('response.output_item.done', { output_index: o.index, item: structuredClone(o.item) });
  }

  /** Whether a function call was made. */
  get calledTools(): boolean {
    return this.output.some((i) => i.type === 'function_call');
  }
}
