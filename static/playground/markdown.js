// Messages as markdown: marked turns the text into HTML, DOMPurify keeps only safe
// markup (no scripts, event handlers, styles, forms or frames: a model's answer or
// a pasted message can run nothing), highlight.js colours the code blocks, and
// every code block gets a copy button. The libraries come from the server's
// /static/vendor/ (the package's node_modules), never from a CDN.
import { marked } from '../vendor/marked.js';
import DOMPurify from '../vendor/purify.js';
import hljs from '../vendor/highlight.js';
import bash from '../vendor/hljs/bash.js';
import c from '../vendor/hljs/c.js';
import cpp from '../vendor/hljs/cpp.js';
import csharp from '../vendor/hljs/csharp.js';
import css from '../vendor/hljs/css.js';
import diff from '../vendor/hljs/diff.js';
import go from '../vendor/hljs/go.js';
import java from '../vendor/hljs/java.js';
import javascript from '../vendor/hljs/javascript.js';
import json from '../vendor/hljs/json.js';
import markdown from '../vendor/hljs/markdown.js';
import python from '../vendor/hljs/python.js';
import rust from '../vendor/hljs/rust.js';
import shell from '../vendor/hljs/shell.js';
import sql from '../vendor/hljs/sql.js';
import typescript from '../vendor/hljs/typescript.js';
import xml from '../vendor/hljs/xml.js';
import yaml from '../vendor/hljs/yaml.js';

const LANGUAGES = { bash, c, cpp, csharp, css, diff, go, java, javascript, json, markdown, python, rust, shell, sql, typescript, xml, yaml };
for (const [name, lang] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, lang);

marked.setOptions({ gfm: true, breaks: true });

const PURIFY = {
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'option', 'iframe', 'frame', 'object', 'embed', 'dialog'],
  FORBID_ATTR: ['style', 'id', 'name'],
  ALLOW_DATA_ATTR: false,
};

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
  // NOTE: the page loads nothing from elsewhere (its Content-Security-Policy would block it anyway).
  if (node.tagName === 'IMG' && !/^data:image\//i.test(node.getAttribute('src') || '')) node.removeAttribute('src');
});

/** Copies text to the clipboard; falls back to a selection where the Clipboard API is unavailable. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.className = 'offscreen';
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    return ok;
  }
}

/** A small button that copies `get()` and says so. */
export function copyButton(get, label = 'Copy', testid = 'copy') {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'mini';
  b.textContent = label;
  b.dataset.testid = testid;
  b.addEventListener('click', async () => {
    const ok = await copyText(get());
    b.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => (b.textContent = label), 1200);
  });
  return b;
}

function highlight(code) {
  const lang = [...code.classList].find((c) => c.startsWith('language-'));
  const name = lang ? lang.slice('language-'.length) : '';
  const text = code.textContent;
  let out = null;
  if (name && hljs.getLanguage(name)) out = hljs.highlight(text, { language: name, ignoreIllegals: true });
  else if (!name && text.length < 4000) out = hljs.highlightAuto(text);
  // NOTE: highlight.js escapes the code; its output is the text plus its own <span class>es.
  if (out) code.innerHTML = out.value;
  code.classList.add('hljs');
  return out ? out.language || name : name;
}

/** Renders `text` as sanitized markdown into `el`, code blocks highlighted with a copy button each. */
export function renderMarkdown(el, text) {
  const html = DOMPurify.sanitize(marked.parse(text), PURIFY);
  el.innerHTML = html;
  for (const code of el.querySelectorAll('pre > code')) {
    const pre = code.parentElement;
    const source = code.textContent;
    const lang = highlight(code);
    const bar = document.createElement('div');
    bar.className = 'code-bar';
    const name = document.createElement('span');
    name.textContent = lang || 'text';
    bar.append(name, copyButton(() => source, 'Copy', 'copy-code'));
    pre.before(bar);
    const wrap = document.createElement('div');
    wrap.className = 'code-block';
    bar.before(wrap);
    wrap.append(bar, pre);
  }
}
