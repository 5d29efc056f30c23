import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The live consumer-lag dashboard (SPEC §5): a static page plus plain browser JS that polls
 * `GET /v1/lag` every second. No build step and no CDN: the page, its script and style, and uPlot
 * (from node_modules) are read once when the routes are registered and served from memory.
 */

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  cacheControl: string;
}

const STATIC_DIR = path.join(import.meta.dirname, 'static');

/** Revalidate every time (cheap 304s), so a node upgrade never leaves a stale page in a browser. */
const REVALIDATE = 'no-cache';
/** The vendored library changes only with the package version; let browsers keep it for a day. */
const VENDOR = 'public, max-age=86400';

function asset(file: string, type: string, cacheControl: string): Asset {
  const body = fs.readFileSync(file);
  const etag = `"${createHash('sha1').update(body).digest('base64url').slice(0, 27)}"`;
  return { body, type, etag, cacheControl };
}

function uplotDist(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('uplot/package.json')), 'dist');
}

/** Loads every dashboard asset; throws at startup (not at first request) when one is missing. */
export function dashboardAssets(): Record<string, Asset> {
  const dist = uplotDist();
  return {
    '/dashboard': asset(path.join(STATIC_DIR, 'index.html'), 'text/html; charset=utf-8', REVALIDATE),
    '/dashboard/app.js': asset(path.join(STATIC_DIR, 'app.js'), 'text/javascript; charset=utf-8', REVALIDATE),
    '/dashboard/app.css': asset(path.join(STATIC_DIR, 'app.css'), 'text/css; charset=utf-8', REVALIDATE),
    '/dashboard/vendor/uplot.js': asset(
      path.join(dist, 'uPlot.iife.min.js'),
      'text/javascript; charset=utf-8',
      VENDOR,
    ),
    '/dashboard/vendor/uplot.css': asset(path.join(dist, 'uPlot.min.css'), 'text/css; charset=utf-8', VENDOR),
  };
}

function send(a: Asset, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply
    .header('content-type', a.type)
    .header('cache-control', a.cacheControl)
    .header('etag', a.etag)
    .header('x-content-type-options', 'nosniff');
  const inm = req.headers['if-none-match'];
  if (inm?.split(',').some((t) => t.trim() === a.etag || t.trim() === `W/${a.etag}`)) {
    return reply.code(304).send();
  }
  return reply.send(a.body);
}

/** Registers GET /dashboard (/dashboard/ redirects there), its script and style, and the vendored uPlot. */
export function dashboardRoutes(app: FastifyInstance): void {
  const assets = dashboardAssets();
  for (const [url, a] of Object.entries(assets)) {
    app.get(url, (req, reply) => send(a, req, reply));
  }
  app.get('/dashboard/', (_req, reply) => reply.redirect('/dashboard', 301));
}
