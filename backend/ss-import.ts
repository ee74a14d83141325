// POST /api/v1/nodes/import: an ss:// access key (SIP002, Outline's) into node fields.
// The salt prefix is kept as the key's decoded text, exactly what `prefix=` said; the
// gateway turns it into bytes when it dials.
import { parseSsUrl } from "../protocol/ss-url.ts";

export function parseSsUrlForNode(url: string) {
  const p = parseSsUrl(url);
  // A percent-encoded tag may carry control characters (even NUL, which PostgreSQL text refuses): a name has none.
  const tag = p.tag.replace(/[\u0000-\u001f\u007f]/g, "").trim().slice(0, 100);
  if (p.password.includes("\u0000")) throw new Error("the password contains a NUL character");
  return { host: p.host, port: p.port, method: p.method, password: p.password, prefix: p.extra.prefix ?? null, tag: tag || null };
}
