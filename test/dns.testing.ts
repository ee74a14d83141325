// A tiny UDP DNS responder for the UDP tests, and the client side of the wire format (RFC 1035
// §4): it answers every A question with one fixed address, so a test can tell a real answer
// through the tunnel from anything else. Only what the tests need: one question, no compression
// in queries, the answer's name as a pointer to the question.
import dgram from "node:dgram";

const TYPE_A = 1;
const CLASS_IN = 1;

/** A standard recursive query for `name` (type A). */
export function dnsQuery(id: number, name: string, type = TYPE_A): Uint8Array {
  const labels = name.split(".").filter(Boolean);
  const qname = labels.flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
  const out = new Uint8Array(12 + qname.length + 1 + 4);
  const v = new DataView(out.buffer);
  v.setUint16(0, id);
  v.setUint16(2, 0x0100); // RD
  v.setUint16(4, 1); // QDCOUNT
  out.set(qname, 12);
  const at = 12 + qname.length + 1; // the root label's zero byte is already there
  v.setUint16(at, type);
  v.setUint16(at + 2, CLASS_IN);
  return out;
}

interface Question {
  id: number;
  name: string;
  type: number;
  /** Offset just past the question (QTYPE and QCLASS included). */
  end: number;
}

function readQuestion(msg: Uint8Array): Question | undefined {
  if (msg.length < 12) return undefined;
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  if (v.getUint16(4) !== 1) return undefined;
  const labels: string[] = [];
  let at = 12;
  for (;;) {
    if (at >= msg.length) return undefined;
    const len = msg[at]!;
    if (len === 0) break;
    if (len > 63 || at + 1 + len > msg.length) return undefined;
    labels.push(new TextDecoder().decode(msg.subarray(at + 1, at + 1 + len)));
    at += 1 + len;
  }
  at += 1;
  if (at + 4 > msg.length) return undefined;
  return { id: v.getUint16(0), name: labels.join("."), type: v.getUint16(at), end: at + 4 };
}

export interface DnsAnswer {
  id: number;
  /** The response bit, and RCODE. */
  response: boolean;
  rcode: number;
  name: string;
  /** The A records' addresses, dotted. */
  addresses: string[];
}

/** Reads a response to one of our queries; undefined when it is not one. */
export function parseDnsAnswer(msg: Uint8Array): DnsAnswer | undefined {
  const q = readQuestion(msg);
  if (!q) return undefined;
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const flags = v.getUint16(2);
  const count = v.getUint16(6);
  const addresses: string[] = [];
  let at = q.end;
  for (let i = 0; i < count; i++) {
    // Only the pointer form our responder writes (0xC00C).
    if (at + 12 > msg.length || (msg[at]! & 0xc0) !== 0xc0) return undefined;
    const type = v.getUint16(at + 2);
    const len = v.getUint16(at + 10);
    if (at + 12 + len > msg.length) return undefined;
    if (type === TYPE_A && len === 4) addresses.push(Array.from(msg.subarray(at + 12, at + 16)).join("."));
    at += 12 + len;
  }
  return { id: q.id, response: (flags & 0x8000) !== 0, rcode: flags & 0x0f, name: q.name, addresses };
}

export interface DnsResponder {
  port: number;
  /** Questions answered so far (names), and datagrams that were not a query. */
  readonly answered: string[];
  readonly malformed: number;
  close(): Promise<void>;
}

/** Answers every A question for any name with `address` (TTL 60); other types get an empty answer. */
export async function startDnsResponder(address = "192.0.2.53", host = "127.0.0.1"): Promise<DnsResponder> {
  const ip = address.split(".").map(Number);
  const socket = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  const answered: string[] = [];
  let malformed = 0;
  socket.on("message", (msg: Uint8Array, rinfo) => {
    const q = readQuestion(msg);
    if (!q) {
      malformed++;
      return;
    }
    const a = q.type === TYPE_A ? 1 : 0;
    const out = new Uint8Array(q.end + a * 16);
    out.set(msg.subarray(0, q.end));
    const v = new DataView(out.buffer);
    v.setUint16(2, 0x8180); // QR, RD, RA, NOERROR
    v.setUint16(6, a); // ANCOUNT
    v.setUint16(8, 0);
    v.setUint16(10, 0);
    if (a) {
      const at = q.end;
      v.setUint16(at, 0xc00c); // the name: a pointer to the question's
      v.setUint16(at + 2, TYPE_A);
      v.setUint16(at + 4, CLASS_IN);
      v.setUint32(at + 6, 60);
      v.setUint16(at + 10, 4);
      out.set(ip, at + 12);
    }
    answered.push(q.name);
    socket.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, host, () => resolve()));
  return {
    port: socket.address().port,
    answered,
    get malformed() {
      return malformed;
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
