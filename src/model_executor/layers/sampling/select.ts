// Partial selection over one row of logits: the k largest without sorting the
// whole vocabulary (a size-k min-heap: one comparison for most entries).

/** a ranks before b: larger value first, then the lower index. */
function before(values: Float32Array, a: number, b: number): boolean {
  const va = values[a]!;
  const vb = values[b]!;
  return va > vb || (va === vb && a < b);
}

function siftDown(heap: Int32Array, size: number, values: Float32Array, start: number): void {
  let i = start;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= size) return;
    const r = l + 1;
    // The heap's root is the entry that ranks last.
    let worst = r < size && before(values, heap[l]!, heap[r]!) ? r : l;
    if (!before(values, heap[i]!, heap[worst]!)) return;
    const t = heap[i]!;
    heap[i] = heap[worst]!;
    heap[worst] = t;
    i = worst;
  }
}

/** Indices of all entries, best first (larger value, then lower index). NaNs go last. */
export function argsortDescending(values: Float32Array): Int32Array {
  const idx = new Int32Array(values.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  return idx.sort((a, b) => {
    const va = values[a]!;
    const vb = values[b]!;
    if (va === vb) return a - b;
    if (Number.isNaN(va)) return 1;
    if (Number.isNaN(vb)) return -1;
    return vb - va || a - b;
  });
}

/** Indices of the k largest values, best first (ties: the lower index first). */
export function topKIndices(values: Float32Array, k: number): Int32Array {
  const n = values.length;
  const kk = Math.min(Math.max(k, 0), n);
  if (kk === 0) return new Int32Array(0);
  if (kk * 4 >= n) return argsortDescending(values).slice(0, kk);
  const heap = new Int32Array(kk);
  for (let i = 0; i < kk; i++) heap[i] = i;
  for (let i = (kk >> 1) - 1; i >= 0; i--) siftDown(heap, kk, values, i);
  for (let i = kk; i < n; i++) {
    // A later index never beats an equal value already kept.
    if (values[i]! > values[heap[0]!]!) {
      heap[0] = i;
      siftDown(heap, kk, values, 0);
    }
  }
  return heap.sort((a, b) => (before(values, a, b) ? -1 : 1));
}

/** The k-th largest value (k >= 1). */
export function kthLargest(values: Float32Array, k: number): number {
  const top = topKIndices(values, k);
  return values[top[top.length - 1]!]!;
}
