// The web playground at GET / and /playground: one self-contained page
// (static/playground.html), read once and served from memory under a strict
// Content-Security-Policy. The page needs no API key; the /v1 calls it makes do.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The paths the page is served at. */
export const PLAYGROUND_PATHS = ['/', '/playground'] as const;

// NOTE: three levels up from src/entrypoints/openai/ (tsx) or dist/entrypoints/openai/
// (built) is the package root, where static/ is shipped.
const PAGE_URL = new URL('../../../static/playground.html', import.meta.url);

interface Page {
  body: Buffer;
  headers: Record<string, string | number>;
}

let cached: Page | null = null;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/**
 * The page's Content-Security-Policy: nothing but the server itself: its own
 * scripts and styles under /static/ and the page's own inline <script> and <style>
 * blocks (by hash), so that injected markup (inline scripts, event handlers, style
 * attributes, anything from elsewhere) can run nothing.
 */
export function contentSecurityPolicy(html: string): string {
  const hashes = (tag: string) => [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => sha256(m[1]));
  const scripts = hashes('script');
  const styles = hashes('style');
  return [
    "default-src 'self'",
    `script-src 'self' ${scripts.join(' ')}`.trimEnd(),
    `style-src 'self' ${styles.join(' ')}`.trimEnd(),
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function loadPage(): Page {
  if (cached !== null) return cached;
  let html: string;
  try {
    html = readFileSync(PAGE_URL, 'utf8');
  } catch (e) {
    throw new Error(
      `The playground page ${PAGE_URL.pathname} could not be read (${(e as Error).message}); ` +
        "reinstall the package (its 'static' folder is missing)",
    );
  }
  const body = Buffer.from(html, 'utf8');
  cached = {
    body,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-length': body.length,
      'content-security-policy': contentSecurityPolicy(html),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    },
  };
  return cached;
}

/** GET (or HEAD) / and /playground: the page. */
export function servePlayground({ req, res }: { req: IncomingMessage; res: ServerResponse }): void {
  const page = loadPage();
  res.writeHead(200, page.headers);
  res.end(req.method === 'HEAD' ? undefined : page.body);
}
