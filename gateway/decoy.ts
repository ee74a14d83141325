// The website a visitor (or a probe) sees on the gateway's address: static files served
// with the headers of an ordinary nginx. Everything that is not our WebSocket — including a
// plain GET to the WebSocket path and failed upgrades — ends up here, so it must answer
// like any other small site: same 404 page, same headers, no errors that reveal the app.
// The files are the operator's (GATEWAY_DECOY_DIR) or the site generated for this install
// (decoy-site.ts); decoyFor picks, or sends everything to a real site (decoy-upstream.ts).
import { statSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { resolve, sep } from "node:path";
import type { Env } from "../config/config.ts";
import { DECOY_SEED_FILE, ensureSecretFile } from "../config/secret-files.ts";
import { generateDecoySite, readDecoyInputs, type SiteFile } from "./decoy-site.ts";
import { upstreamDecoy } from "./decoy-upstream.ts";

export interface DecoyOptions {
  /** Total bytes of file content kept in memory. */
  maxCacheBytes?: number;
  /** Files larger than this are read from disk on every request instead of cached. */
  maxFileBytes?: number;
  /** The `Server` header. */
  server?: string;
}

const types: Record<string, string> = {
  html: "text/html",
  htm: "text/html",
  css: "text/css",
  js: "application/javascript",
  json: "application/json",
  txt: "text/plain",
  xml: "text/xml",
  ico: "image/x-icon",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  svg: "image/svg+xml",
  webp: "image/webp",
  woff2: "font/woff2",
  woff: "font/woff",
};

/** nginx's own body for errors it generates itself, byte for byte. */
export const nginxPage = (status: string) =>
  `<html>\r\n<head><title>${status}</title></head>\r\n<body>\r\n<center><h1>${status}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;

interface Entry {
  kind: "file" | "dir";
  body?: Uint8Array<ArrayBuffer>; // undefined for dirs and for files too large to cache
  path: string;
  size: number;
  mtime: Date;
  etag: string;
}

/** Map a URL path to path segments inside the site, or undefined if it could escape or is hidden. */
function segmentsOf(pathname: string): { parts: string[]; dir: boolean } | undefined {
  const parts: string[] = [];
  const raw = pathname.split("/");
  for (const r of raw) {
    if (r === "") continue; // nginx merges repeated slashes
    let s: string;
    try {
      s = decodeURIComponent(r);
    } catch {
      return undefined;
    }
    // Encoded slashes, backslashes, NUL, dot segments and dotfiles (.git, .env) are never served.
    if (s.startsWith(".") || /[\/\\\0]/.test(s)) return undefined;
    parts.push(s);
  }
  return { parts, dir: pathname.endsWith("/") };
}

/** nginx's ETag: the modification time and the size, in hex. */
const etagOf = (mtime: Date, size: number) => `"${Math.floor(mtime.getTime() / 1000).toString(16)}-${size.toString(16)}"`;

/** A generated site as lookup entries: its files, and every folder on their paths ("" is the root). */
function memorySite(files: readonly SiteFile[]): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  for (const f of files) {
    entries.set(f.path, {
      kind: "file",
      body: f.body,
      path: f.path,
      size: f.body.length,
      mtime: f.mtime,
      etag: etagOf(f.mtime, f.body.length),
    });
    const parts = f.path.split("/");
    for (let i = 0; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!entries.has(dir)) entries.set(dir, { kind: "dir", path: dir, size: 0, mtime: f.mtime, etag: etagOf(f.mtime, 0) });
    }
  }
  return entries;
}

/** The handler for a folder of files (an operator's own site) or for a generated site's files. */
export function decoyHandler(site: string | readonly SiteFile[], opts: DecoyOptions = {}): (req: Request) => Promise<Response> {
  if (typeof site !== "string") {
    const entries = memorySite(site);
    return serveSite((rel) => Promise.resolve(entries.get(rel)), opts);
  }
  const root = resolve(site);
  const maxCache = opts.maxCacheBytes ?? 16 * 1024 * 1024;
  const maxFile = opts.maxFileBytes ?? 2 * 1024 * 1024;
  // Keyed by the normalised relative path, so the map is bounded by the files that exist;
  // misses are not remembered (a probe asking for a million random paths must not grow it).
  const cache = new Map<string, Promise<Entry | undefined>>();
  let cachedBytes = 0;

  async function load(rel: string): Promise<Entry | undefined> {
    const path = resolve(root, rel);
    if (path !== root && !path.startsWith(root + sep)) return undefined;
    const st = await stat(path);
    if (!st.isFile() && !st.isDirectory()) return undefined;
    const mtime = new Date(Math.floor(st.mtimeMs / 1000) * 1000);
    const etag = etagOf(mtime, st.size);
    if (st.isDirectory()) return { kind: "dir", path, size: 0, mtime, etag };
    // Reserve before the read so concurrent loads cannot overshoot the bound together.
    const cacheable = st.size <= maxFile && cachedBytes + st.size <= maxCache;
    let body: Uint8Array<ArrayBuffer> | undefined;
    if (cacheable) {
      cachedBytes += st.size;
      try {
        body = new Uint8Array(await readFile(path));
      } finally {
        cachedBytes -= st.size;
      }
      cachedBytes += body.length;
    }
    return { kind: "file", body, path, size: body?.length ?? st.size, mtime, etag };
  }

  return serveSite((rel) => {
    let p = cache.get(rel);
    if (!p) {
      p = load(rel).catch(() => undefined);
      cache.set(rel, p);
      // Only hits stay: a missing file may appear later and must not pin a map slot.
      void p.then((e) => {
        if (!e || (e.kind === "file" && !e.body)) cache.delete(rel);
      });
    }
    return p;
  }, opts);
}

/** nginx's answers for a site whose files `lookup` finds by relative path. */
function serveSite(lookup: (rel: string) => Promise<Entry | undefined>, opts: DecoyOptions): (req: Request) => Promise<Response> {
  const server = opts.server ?? "nginx";
  const baseHeaders = (): Headers => new Headers({ Server: server, Date: new Date().toUTCString() });

  function fixed(status: number, title: string, extra: Record<string, string> = {}, head = false): Response {
    const body = new TextEncoder().encode(nginxPage(title));
    const h = baseHeaders();
    h.set("Content-Type", "text/html");
    h.set("Content-Length", String(body.length));
    for (const [k, v] of Object.entries(extra)) h.set(k, v);
    return new Response(head ? null : body, { status, headers: h });
  }

  async function send(e: Entry, req: Request, status: number, head: boolean): Promise<Response> {
    const h = baseHeaders();
    const ext = /\.([A-Za-z0-9]+)$/.exec(e.path)?.[1]?.toLowerCase() ?? "";
    h.set("Content-Type", types[ext] ?? "application/octet-stream");
    h.set("Last-Modified", e.mtime.toUTCString());
    h.set("ETag", e.etag);
    h.set("Cache-Control", ext === "html" || ext === "htm" ? "public, max-age=300" : "public, max-age=86400");
    if (status === 200 && isFresh(req, e)) return new Response(null, { status: 304, headers: h });
    const body = e.body ?? new Uint8Array(await readFile(e.path));
    h.set("Content-Length", String(body.length));
    return new Response(head ? null : body, { status, headers: h });
  }

  async function notFound(req: Request, head: boolean): Promise<Response> {
    const page = await lookup("404.html");
    return page?.kind === "file" ? send(page, req, 404, head) : fixed(404, "404 Not Found", {}, head);
  }

  return async (req: Request): Promise<Response> => {
    const head = req.method === "HEAD";
    try {
      if (req.method !== "GET" && !head) return fixed(405, "405 Not Allowed", { Allow: "GET, HEAD" });
      const pathname = new URL(req.url).pathname;
      const seg = segmentsOf(pathname);
      if (!seg) return await notFound(req, head);
      const rel = seg.parts.join("/");
      if (seg.dir) {
        const index = await lookup(rel === "" ? "index.html" : rel + "/index.html");
        return index?.kind === "file" ? await send(index, req, 200, head) : await notFound(req, head);
      }
      const e = await lookup(rel);
      if (!e) return await notFound(req, head);
      if (e.kind === "dir") {
        // nginx redirects a directory without its slash; only where there is something to show.
        const index = await lookup(rel + "/index.html");
        return index ? fixed(301, "301 Moved Permanently", { Location: pathname + "/" }, head) : await notFound(req, head);
      }
      return await send(e, req, 200, head);
    } catch {
      // A read error mid-request (file removed, permissions): the site just does not have it.
      return fixed(404, "404 Not Found", {}, head);
    }
  };
}

function isFresh(req: Request, e: Entry): boolean {
  const inm = req.headers.get("if-none-match");
  if (inm !== null) return inm.trim() === "*" || inm.split(",").some((t) => t.trim().replace(/^W\//, "") === e.etag);
  const ims = req.headers.get("if-modified-since");
  if (ims === null) return false;
  const t = Date.parse(ims);
  return !Number.isNaN(t) && e.mtime.getTime() <= t;
}

/**
 * DATA_DIR/decoy-seed, made now if the generated site is the decoy and there is none yet
 * (undefined otherwise). A gateway's primary makes it before its workers start, so they all
 * read the one seed instead of racing to write theirs.
 */
export function ensureDecoySeed(env: Env): { value: string; path: string } | undefined {
  if (env.GATEWAY_DECOY_UPSTREAM || env.GATEWAY_DECOY_DIR) return undefined;
  return ensureSecretFile(env.DATA_DIR, DECOY_SEED_FILE);
}

/**
 * What the public port serves for everything that is not the tunnel: the real site at
 * GATEWAY_DECOY_UPSTREAM, else the operator's files in GATEWAY_DECOY_DIR, else the site
 * generated for this install from DATA_DIR/decoy-seed (made on first start; its modification
 * time dates the site).
 */
export function decoyFor(env: Env): (req: Request) => Promise<Response> {
  if (env.GATEWAY_DECOY_UPSTREAM) return upstreamDecoy(env.GATEWAY_DECOY_UPSTREAM, { timeoutMs: env.GATEWAY_DECOY_TIMEOUT });
  if (env.GATEWAY_DECOY_DIR) return decoyHandler(env.GATEWAY_DECOY_DIR);
  const seed = ensureDecoySeed(env)!;
  const since = statSync(seed.path).mtime;
  return decoyHandler(generateDecoySite(new TextEncoder().encode(seed.value), readDecoyInputs(), since));
}
