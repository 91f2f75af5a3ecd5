// A bound on the characters one token can cover, read from tokenizer.json, so that a
// text can be refused as too long for the model without tokenizing it: a text of L
// UTF-16 code units has at least ceil(L / maxCharsPerToken) tokens.
//
// The bound holds when the pipeline keeps every input character: each token then
// stands for at most its own vocabulary string's length (byte-level tokens spell
// one byte per character, and a byte is at most one input code unit; SentencePiece
// pieces spell their characters with '▁' for a space). Normalizers that compose
// characters (NFC, NFKC) may fold a few code units into one, hence a factor; a step
// that can drop input (stripping, whitespace-splitting pre-tokenizers, a fused
// unknown token, an unknown component) gives no bound (Infinity).

type Json = Record<string, unknown>;

/** Normalizers that keep every character (or only expand them). */
const KEEPING_NORMALIZERS = new Set(['NFD', 'NFKD', 'Lowercase', 'Prepend', 'ByteLevel']);
/** Normalizers that may compose several code units into one. */
const COMPOSING_NORMALIZERS = new Set(['NFC', 'NFKC']);
/** A composed character comes from at most this many code units in practice (base + marks). */
const COMPOSE_FACTOR = 4;
const KEEPING_PRETOKENIZERS = new Set(['ByteLevel', 'Metaspace', 'Digits', 'Punctuation', 'UnicodeScripts', 'Split']);

/** The factor a normalizer can shrink text by, or Infinity when it may drop characters. */
function normalizerFactor(n: unknown): number {
  if (n === null || n === undefined) return 1;
  const node = n as Json;
  const type = node.type as string;
  if (type === 'Sequence') return ((node.normalizers as unknown[]) ?? []).reduce<number>((f, x) => f * normalizerFactor(x), 1);
  if (KEEPING_NORMALIZERS.has(type)) return 1;
  if (COMPOSING_NORMALIZERS.has(type)) return COMPOSE_FACTOR;
  if (type === 'Replace') {
    // A one-for-one (or growing) replacement such as ' ' -> '▁' keeps the length.
    const pattern = (node.pattern as Json | undefined)?.String;
    const content = node.content;
    if (typeof pattern === 'string' && typeof content === 'string' && content.length >= pattern.length) return 1;
    return Infinity;
  }
  return Infinity; // Strip, StripAccents, BertNormalizer (drops control characters), Precompiled, ...
}

function pretokenizerKeeps(p: unknown): boolean {
  if (p === null || p === undefined) return true;
  const node = p as Json;
  const type = node.type as string;
  if (type === 'Sequence') return ((node.pretokenizers as unknown[]) ?? []).every(pretokenizerKeeps);
  if (type === 'Split') return node.behavior !== 'Removed';
  return KEEPING_PRETOKENIZERS.has(type); // Whitespace, WhitespaceSplit, BertPreTokenizer drop spaces
}

/** Characters of the longest token string (vocab and added tokens), or Infinity when unknown. */
function longestToken(model: Json, addedTokens: unknown): number {
  let max = 0;
  const vocab = model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], ...]
    for (const entry of vocab) if (Array.isArray(entry) && typeof entry[0] === 'string') max = Math.max(max, entry[0].length);
  } else if (vocab !== null && typeof vocab === 'object') {
    for (const piece of Object.keys(vocab)) max = Math.max(max, piece.length);
  } else {
    return Infinity;
  }
  if (Array.isArray(addedTokens)) {
    for (const t of addedTokens) {
      const content = (t as Json | null)?.content;
      if (typeof content === 'string') max = Math.max(max, content.length);
    }
  }
  return Math.max(1, max);
}

/**
 * The most UTF-16 code units of input text that one token can stand for with this
 * tokenizer.json, or Infinity when the pipeline gives no such bound.
 */
export function maxCharsPerToken(tokenizerJson: Json): number {
  const model = (tokenizerJson.model ?? {}) as Json;
  const type = model.type as string | undefined;
  if (type !== 'BPE' && type !== 'Unigram' && type !== 'WordPiece') return Infinity;
  // NOTE: a fused unknown token stands for a whole run of unknown characters.
  if (type === 'BPE' && model.fuse_unk === true && model.byte_fallback !== true && model.unk_token != null) return Infinity;
  // WordPiece's unknown token stands for a whole word (up to max_input_chars_per_word).
  const unkWord = type === 'WordPiece' ? Number(model.max_input_chars_per_word ?? 100) : 0;
  // Unigram's unknown token can stand for a run of unknown characters too.
  if (type === 'Unigram' && model.byte_fallback !== true) return Infinity;
  if (!pretokenizerKeeps(tokenizerJson.pre_tokenizer)) return Infinity;
  const factor = normalizerFactor(tokenizerJson.normalizer);
  if (!Number.isFinite(factor)) return Infinity;
  return Math.max(longestToken(model, tokenizerJson.added_tokens), unkWord) * factor;
}

/** The fewest tokens a text of this many code units can have (0 when there is no bound). */
export function minTokensFor(chars: number, charsPerToken: number): number {
  return Number.isFinite(charsPerToken) ? Math.ceil(chars / charsPerToken) : 0;
}
