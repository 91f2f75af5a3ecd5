// Scanning of JSON text that may still be growing (a model's output so far).

/** End (exclusive) of the JSON value starting at `i` (after whitespace), or -1 while incomplete. */
export function scanJsonValue(text: string, i: number): number {
  while (i < text.length && /\s/.test(text[i]!)) i++;
  if (i >= text.length) return -1;
  const c = text[i]!;
  if (c === '"') return scanString(text, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let k = i; k < text.length; k++) {
      const ch = text[k]!;
      if (ch === '"') {
        const e = scanString(text, k);
        if (e < 0) return -1;
        k = e - 1;
      } else if (ch === '{' || ch === '[') depth++;
      else if (ch === '}' || ch === ']') {
        depth--;
        if (depth === 0) return k + 1;
      }
    }
    return -1;
  }
  // A number, true, false or null: complete once something else follows.
  const m = /^[^\s,\]}]+/.exec(text.slice(i));
  const end = i + (m ? m[0].length : 0);
  return end < text.length ? end : -1;
}

function scanString(text: string, i: number): number {
  for (let k = i + 1; k < text.length; k++) {
    if (text[k] === '\\') k++;
    else if (text[k] === '"') return k + 1;
  }
  return -1;
}

/** A tool call read from a (possibly partial) JSON object `{"name": ..., "arguments": {...}}`. */
export interface PartialCall {
  /** Known once its string is closed. */
  name: string | null;
  /** The arguments' JSON text so far (all of it once argsComplete). */
  args: string;
  argsComplete: boolean;
  /** The whole object was read. */
  complete: boolean;
}

const ARG_KEYS = ['arguments', 'parameters'];

/** Reads name and arguments from the object text starting at `text[0] === '{'` (maybe incomplete). */
export function readCallObject(text: string): PartialCall {
  const end = scanJsonValue(text, 0);
  const complete = end > 0;
  let name: string | null = null;
  let args = '';
  let argsComplete = false;
  // Top-level keys only: walk the object's members.
  let k = 1;
  for (;;) {
    while (k < text.length && /[\s,]/.test(text[k]!)) k++;
    if (k >= text.length || text[k] !== '"') break;
    const keyEnd = scanJsonValue(text, k);
    if (keyEnd < 0) break;
    const key = JSON.parse(text.slice(k, keyEnd)) as string;
    k = keyEnd;
    while (k < text.length && /\s/.test(text[k]!)) k++;
    if (text[k] !== ':') break;
    k++;
    while (k < text.length && /\s/.test(text[k]!)) k++;
    if (k >= text.length) break;
    const valueEnd = scanJsonValue(text, k);
    if (key === 'name') {
      if (valueEnd < 0) break;
      const v = JSON.parse(text.slice(k, valueEnd)) as unknown;
      if (typeof v === 'string') name = v;
    } else if (ARG_KEYS.includes(key)) {
      if (valueEnd < 0) {
        // Still growing: all of what follows is the value.
        args = text.slice(k).trimEnd();
        break;
      }
      args = text.slice(k, valueEnd);
      argsComplete = true;
    }
    if (valueEnd < 0) break;
    k = valueEnd;
  }
  if (complete && !argsComplete) {
    args = '{}';
    argsComplete = true;
  }
  return { name, args, argsComplete, complete };
}

/** The objects of a JSON array of tool calls starting at text[i] === '['. */
export function readCallArray(text: string, i: number): PartialCall[] {
  const calls: PartialCall[] = [];
  let k = i + 1;
  for (;;) {
    while (k < text.length && /[\s,]/.test(text[k]!)) k++;
    if (k >= text.length || text[k] !== '{') break;
    const end = scanJsonValue(text, k);
    calls.push(readCallObject(end < 0 ? text.slice(k) : text.slice(k, end)));
    if (end < 0) break;
    k = end;
  }
  return calls;
}
