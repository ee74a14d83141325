// The server side of a Shadowsocks AEAD stream over any byte stream (an app's WebSocket, or one
// Mux.Cool sub-session of it): it decrypts what the app sends, reads the target address in
// front of it, and encrypts what is written back under a fresh salt marked as the server's.
// What comes after the address is this Duplex's data; the owner hears about the salt (for the
// replay checks), the target (to dial) and any bad input, which it answers quietly (absorb).
//
// Per read, the chunks one input completes go on as one piece, and each write is sealed into
// one array: one message per upstream read on the way back.
import { decodeAddress } from "../../protocol/socks-address.ts";
import { type AeadDecryptor, type AeadEncryptor, joinChunks } from "../../shadowsocks/aead-stream.ts";
import { type Duplex, type DuplexHandlers, DuplexInbox, StreamError, type Target } from "../../transport/stream.ts";
import type { DeviceKey } from "./device-key.ts";

/** The longest SOCKS address: type, length, 255-byte name, port. */
const MAX_ADDRESS = 1 + 1 + 255 + 2;

export interface SsServerEvents {
  /** The first chunk authenticated; a code refuses the stream (a replayed or reflected salt). */
  salt(salt: Uint8Array): string | undefined;
  /** The target address was read: dial it and start this stream (until then it holds what follows). */
  target(target: Target): void;
  /** Bad input (a typed code); the stream has stopped reading and closes after this returns. */
  bad(err: StreamError): void;
}

export class SsServerStream implements Duplex {
  private readonly inbox = new DuplexInbox();
  private readonly dec: AeadDecryptor;
  private enc: AeadEncryptor | undefined;
  /** Plaintext before the address is complete; null once it is. */
  private header: Uint8Array | null = new Uint8Array(0);
  private saltChecked = false;
  private failed = false;
  private started = false;

  constructor(private readonly inner: Duplex, private readonly key: DeviceKey, private readonly events: SsServerEvents) {
    this.dec = key.decryptor();
  }

  /** Start reading the app's bytes (the events may fire from inside this call). */
  listen(): this {
    this.inner.start({
      data: (d) => this.onData(d),
      end: () => {
        if (!this.failed) this.inbox.end();
      },
      drain: () => this.inbox.drain(),
      close: (err) => {
        if (err) this.inbox.close(err);
        else this.inbox.closeAfterData();
      },
    });
    return this;
  }

  start(h: DuplexHandlers): void {
    if (!this.inbox.start(h)) return;
    this.started = true;
    this.inner.resume(); // paused when the target was read, so nothing piles up during the dial
  }

  write(chunk: Uint8Array): boolean {
    if (this.failed) return false;
    if (chunk.length === 0) return true;
    this.enc ??= this.key.encryptor();
    return this.inner.write(this.enc.seal(chunk));
  }

  closeWrite(): void {
    this.inner.closeWrite();
  }

  close(err?: StreamError): void {
    this.inner.close(err);
    this.inbox.close(err);
  }

  pause(): void {
    this.inbox.pause();
    this.inner.pause();
  }

  resume(): void {
    this.inbox.resume();
    if (!this.inbox.isPaused && (this.started || this.header !== null)) this.inner.resume();
  }

  private onData(d: Uint8Array): void {
    if (this.failed) return;
    const pieces = this.dec.push(d);
    if (pieces instanceof StreamError) return this.fail(pieces);
    if (pieces.length === 0) return;
    if (!this.saltChecked) {
      this.saltChecked = true;
      const refused = this.events.salt(this.dec.salt!);
      if (refused) return this.fail(new StreamError(refused, "the salt was seen before"));
    }
    let plain = joinChunks(pieces);
    if (this.header !== null) {
      const buf: Uint8Array = this.header.length ? joinChunks([this.header, plain]) : plain;
      const addr = decodeAddress(buf);
      if (addr instanceof StreamError) {
        if (addr.code !== "short_address" || buf.length >= MAX_ADDRESS) return this.fail(addr);
        this.header = buf;
        return;
      }
      this.header = null;
      plain = buf.subarray(addr.length);
      this.inner.pause();
      this.events.target({ host: addr.host, port: addr.port });
      if (this.failed) return;
    }
    if (plain.length > 0) this.inbox.deliver(plain);
  }

  private fail(err: StreamError): void {
    this.failed = true;
    this.header = null;
    this.events.bad(err);
    this.inbox.close(err);
  }
}
