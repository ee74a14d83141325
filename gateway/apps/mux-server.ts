// The server side of Mux.Cool (protocol/mux-cool.ts) over a byte stream: an app's WebSocket
// (plugin layering: v2ray-plugin mux≠0, mihomo, sing-box; each sub-session a Shadowsocks stream)
// or the plaintext of one Shadowsocks stream to `v1.mux.cool` (core layering: v2ray/Xray with
// mux on; each sub-session a real TCP or UDP target). Each sub-session is a Duplex the owner
// serves.
//
// What the clients need (after v2fly common/mux and the clients' readers, docs/08 "The data path"): our
// frames are Keep and End with MetaLen 4 (mihomo's reader assumes it), we never send
// KeepAlive or New; a Keep for a session we do not have is answered with End; an End from the
// client finishes its direction (v2ray then forgets the session, so a second End or our data
// being answered with End closes it); End with the Error bit is abortive.
//
// Memory: Mux.Cool has no per-session flow control, so, like v2ray's server, a sub-session whose
// consumer pauses pauses the whole connection; what is held is what one read of the parent had
// already decoded. At most `maxSessions` sub-sessions at once; more are refused with End.
import {
  encodeMuxEnd,
  encodeMuxKeep,
  MUX_MAX_DATA,
  MuxCoolDecoder,
  type MuxFrame,
  type MuxNetwork,
} from "../../protocol/mux-cool.ts";
import { type Duplex, type DuplexHandlers, DuplexInbox, StreamError, type Target } from "../../transport/stream.ts";

/** v2ray-plugin's client uses at most 128 sub-sessions over a connection's life (MaxConnection). */
export const MUX_MAX_SESSIONS = 128;

export interface MuxServerEvents {
  /** A New frame opened `sub` (its first data, if any, is already held): serve it by starting it. */
  session(sub: MuxSub): void;
  /** Bad framing (a typed code); the server stops reading and every sub-session closes. */
  bad(err: StreamError): void;
}

export class MuxServer {
  private readonly decoder = new MuxCoolDecoder();
  private readonly subs = new Map<number, MuxSub>();
  private pausedSubs = 0;
  private failed = false;
  private done = false;

  constructor(
    private readonly parent: Duplex,
    private readonly events: MuxServerEvents,
    private readonly maxSessions = MUX_MAX_SESSIONS,
  ) {
    parent.start({
      data: (d) => this.onData(d),
      end: () => this.finish(),
      drain: () => {
        for (const s of this.subs.values()) s.parentDrained();
      },
      close: (err) => this.finish(err ?? new StreamError("mux_closed", "the connection closed")),
    });
  }

  get sessions(): number {
    return this.subs.size;
  }

  // ---- what the sub-sessions ask of the connection ----

  /** Frames for the app; false when the connection is over its high-water mark. */
  send(frames: Uint8Array): boolean {
    if (this.done) return false;
    return this.parent.write(frames);
  }

  subPaused(paused: boolean): void {
    this.pausedSubs += paused ? 1 : -1;
    if (paused && this.pausedSubs === 1) this.parent.pause();
    if (!paused && this.pausedSubs === 0 && !this.done) this.parent.resume();
  }

  forget(sub: MuxSub): void {
    if (this.subs.get(sub.id) === sub) this.subs.delete(sub.id);
    if (sub.isPaused) this.subPaused(false);
  }

  // ---- frames from the app ----

  private onData(d: Uint8Array): void {
    if (this.failed) return;
    const frames = this.decoder.push(d);
    if (frames instanceof StreamError) return this.fail(frames);
    for (const f of frames) {
      this.frame(f);
      if (this.failed) return;
    }
  }

  private frame(f: MuxFrame): void {
    const sub = this.subs.get(f.sessionId);
    switch (f.status) {
      case "new": {
        if (sub) return this.fail(new StreamError("mux_duplicate_session", `session ${f.sessionId} is already open`));
        if (this.subs.size >= this.maxSessions) {
          this.send(encodeMuxEnd(f.sessionId, true));
          return;
        }
        const s = new MuxSub(this, f.sessionId, f.network ?? "tcp", f.target!);
        this.subs.set(s.id, s);
        if (f.data && f.data.length > 0) s.fromApp(f.data);
        this.events.session(s);
        return;
      }
      case "keep":
        if (!sub) {
          // v2ray answers a Keep for a session it does not have with End, and drops the data.
          if (f.data) this.send(encodeMuxEnd(f.sessionId));
          return;
        }
        if (f.data && f.data.length > 0) sub.fromApp(f.data);
        return;
      case "end":
        sub?.appEnded(f.error);
        return;
      case "keepalive":
        return;
    }
  }

  private fail(err: StreamError): void {
    this.failed = true;
    this.events.bad(err);
    this.finish(err);
  }

  private finish(err?: StreamError): void {
    if (this.done) return;
    this.done = true;
    for (const s of [...this.subs.values()]) s.parentGone(err);
    this.subs.clear();
  }
}

/** One sub-session: the app's bytes (Keep data) in, ours out as Keep frames, End both ways. */
export class MuxSub implements Duplex {
  private readonly inbox = new DuplexInbox();
  private appEnd = false;
  private ourEnd = false;
  private closed = false;
  private paused = false;
  private owesDrain = false;

  constructor(private readonly server: MuxServer, readonly id: number, readonly network: MuxNetwork, readonly target: Target) {}

  get isPaused(): boolean {
    return this.paused;
  }

  start(h: DuplexHandlers): void {
    this.inbox.start(h);
  }

  /** For a UDP sub-session each write is one datagram: one frame, whatever its size (up to 65535). */
  write(chunk: Uint8Array): boolean {
    if (this.closed || this.ourEnd) return false;
    if (chunk.length === 0) return true;
    const frames = this.network === "udp"
      ? encodeMuxKeep(this.id, chunk.subarray(0, MUX_MAX_DATA), Math.min(MUX_MAX_DATA, chunk.length))
      : encodeMuxKeep(this.id, chunk);
    if (this.server.send(frames)) return true;
    this.owesDrain = true;
    return false;
  }

  closeWrite(): void {
    if (this.closed || this.ourEnd) return;
    this.ourEnd = true;
    this.server.send(encodeMuxEnd(this.id));
    if (this.appEnd) this.finish();
  }

  close(err?: StreamError): void {
    if (this.closed) return;
    if (!this.ourEnd) {
      this.ourEnd = true;
      this.server.send(encodeMuxEnd(this.id, err !== undefined));
    }
    this.finish(err);
  }

  pause(): void {
    this.inbox.pause();
    if (this.paused || this.closed) return;
    this.paused = true;
    this.server.subPaused(true);
  }

  resume(): void {
    this.inbox.resume();
    if (!this.paused || this.closed) return;
    this.paused = false;
    this.server.subPaused(false);
  }

  // ---- from the server ----

  fromApp(data: Uint8Array): void {
    if (this.closed || this.appEnd) return;
    this.inbox.deliver(data);
  }

  appEnded(abortive: boolean): void {
    if (this.closed) return;
    if (abortive) return this.finish(new StreamError("mux_session_aborted", "the app aborted the sub-session"));
    // A second End, or End after ours: the app has forgotten the session (v2ray does on its End).
    if (this.appEnd || this.ourEnd) return this.finish();
    this.appEnd = true;
    this.inbox.end();
  }

  parentDrained(): void {
    if (!this.owesDrain || this.closed) return;
    this.owesDrain = false;
    this.inbox.drain();
  }

  parentGone(err?: StreamError): void {
    if (this.closed) return;
    this.ourEnd = true;
    if (!err) {
      this.inbox.end();
      this.finish();
    } else this.finish(err);
  }

  private finish(err?: StreamError): void {
    if (this.closed) return;
    this.closed = true;
    this.server.forget(this);
    this.paused = false;
    if (err) this.inbox.close(err);
    else this.inbox.closeAfterData();
  }
}
