// The conversations sidebar: new, switch, rename, delete, export (one or all) and
// import (JSON files of the export's format).
import { store } from './api.js';
import { deleteConversation, exportText, listConversations, newConversation, parseImport, saveConversation } from './store.js';

const CURRENT_STORE = 'vllm-ts.playground.current';
const $ = (id) => document.getElementById(id);

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

const fileName = (title) => (title.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'chat') + '.json';

/** `onSelect(conv)`: show this conversation; `busy()`: a generation is running (no switching then). */
export function createSidebar({ onSelect, busy }) {
  let convs = [];
  let currentId = store.get('localStorage', CURRENT_STORE);
  const ul = $('conversations');

  function select(conv) {
    currentId = conv.id;
    store.set('localStorage', CURRENT_STORE, conv.id);
    draw();
    onSelect(conv);
    document.body.classList.remove('drawer-open');
  }

  function item(conv) {
    const li = document.createElement('li');
    li.className = 'conv' + (conv.id === currentId ? ' current' : '');
    li.dataset.testid = 'conversation';
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'conv-open';
    open.dataset.testid = 'conversation-open';
    open.textContent = conv.title;
    open.title = conv.title;
    if (conv.id === currentId) open.setAttribute('aria-current', 'true');
    open.addEventListener('click', () => !busy() && select(conv));
    const tools = document.createElement('span');
    tools.className = 'conv-tools';
    const mk = (label, text, testid, fn) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'icon';
      b.textContent = text;
      b.title = label;
      b.setAttribute('aria-label', label + ': ' + conv.title);
      b.dataset.testid = testid;
      b.addEventListener('click', fn);
      tools.append(b);
    };
    mk('Rename', '✎', 'rename-conversation', () => rename(li, conv));
    mk('Export', '⤓', 'export-conversation', () => download(fileName(conv.title), exportText([conv])));
    mk('Delete', '✕', 'delete-conversation', () => remove(conv));
    li.append(open, tools);
    return li;
  }

  function rename(li, conv) {
    const input = document.createElement('input');
    input.type = 'text';
    input.value = conv.title;
    input.className = 'conv-rename';
    input.dataset.testid = 'rename-input';
    input.setAttribute('aria-label', 'New name');
    let done = false;
    const finish = async (keep) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      if (keep && title && title !== conv.title) {
        conv.title = title.slice(0, 200);
        conv.updated = Date.now();
        await saveConversation(conv);
      }
      await refresh();
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); finish(true); }
      if (e.key === 'Escape') { e.stopPropagation(); finish(false); }
    });
    input.addEventListener('blur', () => finish(true));
    li.replaceChildren(input);
    input.focus();
    input.select();
  }

  async function remove(conv) {
    if (busy() && conv.id === currentId) return;
    if (!window.confirm(`Delete the conversation “${conv.title}”?`)) return;
    await deleteConversation(conv.id);
    convs = convs.filter((c) => c.id !== conv.id);
    if (conv.id === currentId) select(convs[0] || (await fresh()));
    else draw();
  }

  async function fresh() {
    const c = newConversation();
    await saveConversation(c);
    convs.unshift(c);
    return c;
  }

  function draw() {
    ul.replaceChildren(...convs.map(item));
  }

  async function refresh() {
    convs = await listConversations();
    draw();
  }

  $('new-chat').addEventListener('click', async () => {
    if (busy()) return;
    const cur = convs.find((c) => c.id === currentId);
    // an empty chat is reused rather than piled up
    select(cur && cur.messages.length === 0 ? cur : await fresh());
    $('input').focus();
  });
  $('export-all').addEventListener('click', () => download('vllm-ts-conversations.json', exportText(convs)));
  $('import').addEventListener('click', () => $('import-file').click());
  $('import-file').addEventListener('change', async () => {
    const file = $('import-file').files[0];
    $('import-file').value = '';
    if (!file) return;
    const note = $('sidebar-note');
    try {
      const imported = parseImport(await file.text());
      const ids = new Set(convs.map((c) => c.id));
      for (const c of imported) {
        // NOTE: an imported conversation never overwrites one kept here.
        if (ids.has(c.id)) c.id = crypto.randomUUID ? crypto.randomUUID() : c.id + '-' + Date.now().toString(36);
        await saveConversation(c);
      }
      await refresh();
      note.textContent = `Imported ${imported.length} conversation${imported.length === 1 ? '' : 's'}`;
      if (imported.length && !busy()) select(convs.find((c) => c.id === imported[0].id));
    } catch (e) {
      note.textContent = 'Import failed: ' + e.message;
    }
    note.hidden = false;
    setTimeout(() => (note.hidden = true), 4000);
  });
  $('drawer-toggle').addEventListener('click', () => document.body.classList.toggle('drawer-open'));

  return {
    /** Loads the list and shows the last conversation (or a new one). */
    async start() {
      await refresh();
      select(convs.find((c) => c.id === currentId) || convs[0] || (await fresh()));
    },
    /** A conversation changed (new message, new title): its place and title in the list. */
    changed(conv) {
      const i = convs.findIndex((c) => c.id === conv.id);
      if (i >= 0) convs.splice(i, 1);
      convs.unshift(conv);
      draw();
    },
  };
}
