// GET /docs: a small self-contained page (no CDN, nothing fetched but the server's
// own openapi.json) that lists the routes and the fields of each request body, as
// FastAPI's /docs does for vLLM. Built with DOM calls only (no innerHTML), under the
// same strict Content-Security-Policy as the playground.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { contentSecurityPolicy } from './serving_playground.js';

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
h1{font-size:1.4rem}details{border:1px solid #ddd;border-radius:6px;margin:.5rem 0;padding:.4rem .7rem}
summary{cursor:pointer}.m{display:inline-block;min-width:3.5rem;font-weight:600;font-family:monospace}
.get{color:#0a6}.post{color:#06c}code,td{font-family:monospace}table{border-collapse:collapse;margin:.5rem 0}
td,th{border-bottom:1px solid #eee;padding:.2rem .6rem;text-align:left;vertical-align:top}.req{color:#b00}`;

const SCRIPT = `
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
const typeOf = (s, doc) => {
  if (!s) return 'any';
  if (s.$ref) return s.$ref.split('/').pop();
  if (s.anyOf || s.oneOf) return (s.anyOf || s.oneOf).map((x) => typeOf(x, doc)).join(' | ');
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (s.type === 'array') return typeOf(s.items, doc) + '[]';
  return Array.isArray(s.type) ? s.type.join(' | ') : (s.type || 'object');
};
const fields = (schema, doc) => {
  const t = el('table');
  const head = el('tr'); ['field', 'type', ''].forEach((h) => head.append(el('th', h))); t.append(head);
  const req = new Set(schema.required || []);
  for (const [name, s] of Object.entries(schema.properties || {})) {
    const row = el('tr');
    row.append(el('td', name), el('td', typeOf(s, doc)), el('td', req.has(name) ? 'required' : '', 'req'));
    t.append(row);
  }
  return t;
};
fetch('openapi.json').then((r) => r.json()).then((doc) => {
  const root = document.getElementById('routes');
  document.getElementById('title').textContent = doc.info.title + ' ' + doc.info.version;
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const d = el('details');
      const s = el('summary');
      s.append(el('span', method.toUpperCase(), 'm ' + method), el('code', ' ' + path + ' '), el('span', ' ' + op.summary));
      d.append(s);
      const body = op.requestBody && op.requestBody.content['application/json'].schema;
      for (const ref of body ? (body.oneOf || [body]) : []) {
        const name = ref.$ref.split('/').pop();
        d.append(el('h4', name), fields(doc.components.schemas[name], doc));
      }
      root.append(d);
    }
  }
}).catch((e) => { document.getElementById('routes').textContent = 'Could not load openapi.json: ' + e; });`;

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vllm-ts API</title><link rel="icon" href="data:,">
<style>${STYLE}</style></head>
<body><h1 id="title">vllm-ts API</h1>
<p>Generated from <a href="openapi.json">openapi.json</a>, whose request schemas are the ones the server validates with.</p>
<div id="routes"></div>
<script>${SCRIPT}</script></body></html>`;

const BODY = Buffer.from(HTML, 'utf8');
const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-length': BODY.length,
  'content-security-policy': contentSecurityPolicy(HTML),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function serveDocs({ req, res }: { req: IncomingMessage; res: ServerResponse }): void {
  res.writeHead(200, HEADERS);
  res.end(req.method === 'HEAD' ? undefined : BODY);
}
