// Conversations kept in this browser (IndexedDB; in memory where it is unavailable),
// and their export / import as JSON.
//
// A conversation: { id, title, created, updated, messages: [message] }; a message:
// { role: 'user' | 'assistant' | 'tool', content, tool_calls?, tool_call_id?,
//   reasoning?, stats?, tokens?, error? }, where tokens are the answer's token
// probabilities: [{ t: text, lp: logprob, top: [[text, logprob], ...] }].
const DB_NAME = 'vllm-ts-playground';
const STORE = 'conversations';
export const EXPORT_FORMAT = 'vllm-ts.conversations';

let dbPromise = null;
const memory = new Map();

function openDb() {
  dbPromise ??= new Promise((resolve) => {
    let req;
    try {
      req = indexedDB.open(DB_NAME, 1);
    } catch {
      resolve(null);
      return;
    }
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'id' });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => resolve(null); // private mode, or storage turned off: memory only
  });
  return dbPromise;
}

function tx(db, mode, fn) {
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const r = fn(t.objectStore(STORE));
    t.oncomplete = () => resolve(r && r.result);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new Error('the transaction was aborted'));
  });
}

/** Every conversation, the most recently updated first. */
export async function listConversations() {
  const db = await openDb();
  const all = db ? await tx(db, 'readonly', (s) => s.getAll()) : [...memory.values()];
  return all.sort((a, b) => b.updated - a.updated);
}

export async function saveConversation(conv) {
  const db = await openDb();
  // NOTE: a plain copy, so that what is stored is data only (no DOM, no functions).
  const copy = JSON.parse(JSON.stringify(conv));
  if (db) await tx(db, 'readwrite', (s) => s.put(copy));
  else memory.set(copy.id, copy);
}

export async function deleteConversation(id) {
  const db = await openDb();
  if (db) await tx(db, 'readwrite', (s) => s.delete(id));
  else memory.delete(id);
}

export const newId = () => (crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2));

export function newConversation() {
  const now = Date.now();
  return { id: newId(), title: 'New chat', created: now, updated: now, messages: [] };
}

/** The export file's text: { format, version, exported, conversations }. */
export function exportText(conversations) {
  return JSON.stringify({ format: EXPORT_FORMAT, version: 1, exported: new Date().toISOString(), conversations }, null, 2);
}

const ROLES = new Set(['user', 'assistant', 'tool']);

/**
 * The conversations of an export file (ours, one conversation, or a list of them),
 * checked field by field; throws an Error that says what is wrong.
 */
export function parseImport(text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error('the file is not JSON (' + e.message + ')');
  }
  const list = Array.isArray(data) ? data : Array.isArray(data && data.conversations) ? data.conversations : data && data.messages ? [data] : null;
  if (!list) throw new Error('the file holds no conversations (expected {"conversations": [...]})');
  return list.map((c, i) => {
    if (!c || !Array.isArray(c.messages)) throw new Error(`conversation ${i + 1} has no messages list`);
    const messages = c.messages.map((m, j) => {
      if (!m || !ROLES.has(m.role) || typeof m.content !== 'string') {
        throw new Error(`conversation ${i + 1}, message ${j + 1}: needs a role (user, assistant or tool) and a text content`);
      }
      return m;
    });
    const now = Date.now();
    return {
      id: typeof c.id === 'string' && c.id ? c.id : newId(),
      title: typeof c.title === 'string' && c.title.trim() ? c.title.slice(0, 200) : 'Imported chat',
      created: Number.isFinite(c.created) ? c.created : now,
      updated: Number.isFinite(c.updated) ? c.updated : now,
      messages,
    };
  });
}
