// The encoded vocabulary xgrammar's TokenizerInfo needs, read from a HuggingFace
// tokenizer.json: each id's token string, and how tokens map to bytes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TokenizerVocab {
  /** Token string per id (added tokens included); '' for ids without one. */
  encoded: string[];
  /** xgrammar's vocab type: BYTE_LEVEL (GPT-2 style), BYTE_FALLBACK (SentencePiece <0xNN>) or RAW. */
  vocabType: 'BYTE_LEVEL' | 'BYTE_FALLBACK' | 'RAW';
  /** SentencePiece tokenizers that prepend '▁' to the text. */
  prependSpace: boolean;
}

type Json = Record<string, unknown>;

/** True when `node` (a decoder / pre-tokenizer, possibly a Sequence) has a part of `type`. */
function hasPart(node: unknown, type: string): Json | null {
  if (node === null || typeof node !== 'object') return null;
  const n = node as Json;
  if (n.type === type) return n;
  for (const key of ['decoders', 'pretokenizers', 'normalizers']) {
    const list = n[key];
    if (Array.isArray(list)) for (const c of list) { const hit = hasPart(c, type); if (hit) return hit; }
  }
  return null;
}

export function readTokenizerVocab(dir: string): TokenizerVocab {
  const tj = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as Json;
  const model = tj.model as Json;
  const encoded: string[] = [];
  const vocab = model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], ...] by id.
    vocab.forEach((entry, id) => (encoded[id] = String((entry as unknown[])[0])));
  } else {
    for (const [tok, id] of Object.entries(vocab as Record<string, number>)) encoded[id] = tok;
  }
  for (const a of (tj.added_tokens as { id: number; content: string }[] | undefined) ?? []) encoded[a.id] = a.content;
  for (let i = 0; i < encoded.length; i++) encoded[i] ??= '';
  let vocabType: TokenizerVocab['vocabType'] = 'RAW';
  let prependSpace = false;
  if (model.byte_fallback === true) {
    vocabType = 'BYTE_FALLBACK';
    const meta = hasPart(tj.pre_tokenizer, 'Metaspace');
    prependSpace = hasPart(tj.normalizer, 'Prepend') !== null || (meta !== null && meta.prepend_scheme !== 'never' && meta.add_prefix_space !== false);
  } else if (hasPart(tj.decoder, 'ByteLevel') || hasPart(tj.pre_tokenizer, 'ByteLevel')) {
    vocabType = 'BYTE_LEVEL';
  } else if (hasPart(tj.decoder, 'Metaspace') || hasPart(tj.pre_tokenizer, 'Metaspace')) {
    vocabType = 'BYTE_FALLBACK';
    prependSpace = true;
  }
  return { encoded, vocabType, prependSpace };
}
