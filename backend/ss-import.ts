// POST /api/v1/nodes/import: an ss:// access key (SIP002, Outline's) into node fields.
// The salt prefix is kept as the key's decoded text, exactly what `prefix=` said; the
// gateway turns it into bytes when it dials.
import { parseSsUrl } from "../protocol/ss-url.ts";

export function parseSsUrlForNode(url: string) {
  const p = parseSsUrl(url);
  return { host: p.host, port: p.port, method: p.method, password: p.password, prefix: p.extra.prefix ?? null, tag: p.tag || null };
}
