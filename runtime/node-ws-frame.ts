// The Node gateway's bulk data frames, written beside `ws` instead of through it.
//
// ws.send(payload) writes [WebSocket header, payload] as a corked pair; node:tls joins a write of
// more than one buffer into a fresh one before encrypting it, and the session had already joined
// its own frame head and the payload: two copies and two allocations of every bulk payload
// before encryption (the gateway's garbage collector showed at 20 % of its CPU in
// `--cpu-prof direct/node`, 3–5 % with this; docs/06). Here head and payload are copied once,
// into one buffer with the WebSocket header in front, and the TLS socket gets that single
// buffer. A server's frame is unmasked (RFC 6455 §5.1): the header is all there is to write.
//
// This is only right while ws itself writes straight through: its sender idle (state DEFAULT,
// nothing queued; it queues only for permessage-deflate and Blobs, which the gateway never uses,
// so this is the normal case) and the connection open. Then everything ws accepted before is
// already in the socket's queue, ahead of this frame, and ws.bufferedAmount (the socket's queue
// plus ws's own) still counts it. When it is not, the caller sends through ws as before.
import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";

/** The parts of ws 8's WebSocket this relies on; checked once, so another ws version falls back. */
interface WsInternals {
  _socket?: unknown;
  _sender?: { _state?: unknown; _queue?: unknown };
}

/** ws 8's sender state when it writes straight to the socket (lib/sender.js DEFAULT). */
const SENDER_DEFAULT = 0;

/** Writes a binary frame of head + body when it safely can (true), else leaves it to ws (false). */
export type FrameWriter = (head: Uint8Array, body: Uint8Array) => boolean;

/** A writer for a server-side `ws` socket over `raw`, or undefined when ws's internals are not the known ones. */
export function serverFrameWriter(ws: WebSocket, raw: Duplex): FrameWriter | undefined {
  const internals = ws as unknown as WsInternals;
  const sender = internals._sender;
  if (internals._socket !== raw || !sender || typeof sender._state !== "number" || !Array.isArray(sender._queue)) {
    return undefined;
  }
  const queue = sender._queue as unknown[];
  return (head, body) => {
    if (sender._state !== SENDER_DEFAULT || queue.length !== 0 || !raw.writable) return false;
    raw.write(encodeServerFrame(head, body));
    return true;
  };
}

/** One unmasked, final binary WebSocket frame whose payload is head then body (RFC 6455 §5.2). */
export function encodeServerFrame(head: Uint8Array, body: Uint8Array): Buffer {
  const len = head.length + body.length;
  const at = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(at + len);
  frame[0] = 0x82; // FIN, opcode 2 (binary)
  if (at === 2) frame[1] = len;
  else if (at === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    frame.writeUInt32BE(len >>> 0, 6);
  }
  frame.set(head, at);
  frame.set(body, at + head.length);
  return frame;
}

/** head + body in one buffer, for a socket that must send them as one message. */
export function joinParts(head: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}
