// The one reader of raw HTTP/1.x responses in the tests: whatever carries the bytes (a tunnel
// stream, a Shadowsocks Duplex, a TLS socket before a WebSocket upgrade), they are pushed in as
// they arrive; the head is parsed once complete and the body handed on. HttpResponse keeps what
// the tests compare of a body — length, sha256, the first 4 KiB as text — so a 64 MiB download
// costs no memory.
import { createHash } from "node:crypto";

export interface ResponseHead {
  /** "HTTP/1.1 200 OK". */
  statusLine: string;
  status: number;
  /** The header lines in order, names as sent (case kept), values trimmed. */
  fields: Array<[name: string, value: string]>;
  /** Lower-cased names → values. */
  headers: Record<string, string>;
}

/** A head's text without its blank line: the status line, then one header per line. */
export function parseHead(text: string): ResponseHead {
  const lines = text.split("\r\n");
  const fields: Array<[string, string]> = [];
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    const [name, value] = [l.slice(0, i), l.slice(i + 1).trim()];
    fields.push([name, value]);
    headers[name.trim().toLowerCase()] = value;
  }
  return { statusLine: lines[0]!, status: Number(lines[0]!.split(" ")[1]), fields, headers };
}

/** Bytes in, head out: everything after the head's blank line goes to `onBody`, as it comes. */
export class ResponseReader {
  head: ResponseHead | undefined;
  private buffered = new Uint8Array(0);

  constructor(private readonly onBody: (chunk: Uint8Array) => void) {}

  push(chunk: Uint8Array): void {
    if (this.head) return this.onBody(chunk);
    const merged = new Uint8Array(this.buffered.length + chunk.length);
    merged.set(this.buffered);
    merged.set(chunk, this.buffered.length);
    this.buffered = merged;
    // latin1: one character per byte, so the text's offsets are the bytes'.
    const text = new TextDecoder("latin1").decode(merged);
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) return;
    this.head = parseHead(text.slice(0, end));
    this.buffered = new Uint8Array(0);
    if (merged.length > end + 4) this.onBody(merged.subarray(end + 4));
  }
}

/** What the tests compare of one response; status 0 and no headers when no head came. */
export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  bodyLength: number;
  bodySha256: string;
  /** The first 4 KiB of the body as text. */
  bodyText: string;
}

/** One response read whole: the body hashed and counted as it arrives. */
export class HttpResponse {
  private readonly reader = new ResponseReader((b) => this.body(b));
  private readonly hash = createHash("sha256");
  private length = 0;
  private readonly text: Uint8Array[] = [];

  push(chunk: Uint8Array): void {
    this.reader.push(chunk);
  }

  get head(): ResponseHead | undefined {
    return this.reader.head;
  }

  private body(b: Uint8Array): void {
    this.hash.update(b);
    this.length += b.length;
    if (this.length <= 4096) this.text.push(b.slice());
  }

  result(): HttpResult {
    return {
      status: this.head?.status ?? 0,
      headers: this.head?.headers ?? {},
      bodyLength: this.length,
      bodySha256: this.hash.digest("hex"),
      bodyText: new TextDecoder().decode(Buffer.concat(this.text)),
    };
  }
}
