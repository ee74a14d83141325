// Shadowsocks as a Dialer that wraps another Dialer (outline-sdk style): dial() reaches the
// Shadowsocks server through `base` and returns a Duplex that encrypts what is written and
// decrypts what arrives.
//
// Two protocol constraints shape it:
// - The target address travels in the same chunk (and the same TCP write) as the first data:
//   outline-ss-server reads 50 bytes before it tries its keys. We hold the address until the
//   first write, closeWrite(), or `addressHoldMs` (default 10 ms, as outline-sdk), whichever
//   comes first; a server-speaks-first target still gets its address after the hold.
// - A wrong password or method is silent: libev and outline-ss-server read and discard,
//   never answer, never close. So from the moment our first bytes leave, we wait at most
//   `timeoutMs` for the server's first authenticated chunk, then close with `upstream_timeout`.
//   A right key cannot be told apart from a target that is slow to say anything, so once a
//   dialer has seen its key work, streams dialed within `trustWindowMs` of that success skip
//   this wait: a long poll then lives as long as the caller lets it.
import { type Dialer, type Duplex, type DuplexHandlers, DuplexInbox, StreamError, type Target } from "../transport/stream.ts";
import { encodeAddress } from "../protocol/socks-address.ts";
import { AeadDecryptor, AeadEncryptor, joinChunks, makeSalt } from "./aead-stream.ts";
import type { AeadProvider, CipherSpec } from "./aead.ts";
import { cipherSpec, providerFor } from "./ciphers.ts";
import { evpBytesToKey } from "./kdf.ts";

export interface ShadowsocksDialerOptions {
  host: string;
  port: number;
  method: string;
  password: string;
  /** Fixed first bytes of every TCP salt (Outline access key `prefix`). */
  prefix?: Uint8Array;
  /** Connect to the server and wait for its first response, each at most this long (ms). Default 5000; 0 = never. */
  timeoutMs?: number;
  /** Hold the target address this long (ms) for the first data. Default 10. */
  addressHoldMs?: number;
  /** After the key is seen to work, skip the first-response wait for this long (ms). Default 60000. */
  trustWindowMs?: number;
  /** Crypto provider; default: the first usable one for the method on this runtime. */
  provider?: AeadProvider;
}

interface KeyTrust {
  confirmedAt: number;
}

export function shadowsocksDialer(opts: ShadowsocksDialerOptions, base: Dialer): Dialer {
  const spec = cipherSpec(opts.method);
  // Fail at construction, not on every stream, when the prefix cannot fit the salt.
  makeSalt(spec, opts.prefix);
  const masterKey = evpBytesToKey(opts.password, spec.keyLen);
  const provider = opts.provider ?? providerFor(spec);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const holdMs = opts.addressHoldMs ?? 10;
  const trustWindowMs = opts.trustWindowMs ?? 60_000;
  const server: Target = { host: opts.host, port: opts.port };
  const trust: KeyTrust = { confirmedAt: -Infinity };

  return {
    async dial(target: Target, signal?: AbortSignal): Promise<Duplex> {
      const header = encodeAddress(target);
      const inner = await dialWithTimeout(base, server, signal, timeoutMs);
      const trusted = performance.now() - trust.confirmedAt < trustWindowMs;
      return new ShadowsocksStream(inner, header, spec, masterKey, provider, opts.prefix, {
        responseTimeoutMs: trusted ? 0 : timeoutMs,
        holdMs,
        onConfirmed: () => {
          trust.confirmedAt = performance.now();
        },
      });
    },
  };
}

async function dialWithTimeout(
  base: Dialer,
  server: Target,
  signal: AbortSignal | undefined,
  timeoutMs: number,
): Promise<Duplex> {
  if (timeoutMs <= 0) return base.dial(server, signal);
  const ac = new AbortController();
  const onAbort = () => ac.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) ac.abort(signal.reason);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new StreamError("upstream_timeout", `Shadowsocks server: no connection after ${timeoutMs} ms`));
      ac.abort();
    }, timeoutMs);
  });
  const dialing = base.dial(server, ac.signal);
  try {
    return await Promise.race([dialing, timeout]);
  } catch (e) {
    // A base dialer that ignores the abort may still connect later; don't leak that stream.
    dialing.then((d) => d.close(), () => {});
    throw e instanceof StreamError
      ? e
      : new StreamError("upstream_error", `Shadowsocks server: ${e instanceof Error ? e.message : "dial failed"}`);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

interface StreamTiming {
  responseTimeoutMs: number;
  holdMs: number;
  onConfirmed(): void;
}

class ShadowsocksStream implements Duplex {
  /** Plaintext for the caller: held while paused (one socket read can hold several chunks). */
  private readonly inbox = new DuplexInbox();
  private header: Uint8Array | null;
  private readonly enc: AeadEncryptor;
  private readonly dec: AeadDecryptor;
  private holdTimer: ReturnType<typeof setTimeout> | undefined;
  private responseTimer: ReturnType<typeof setTimeout> | undefined;
  private responseArmed = false;
  private confirmed = false;
  private writeClosed = false;
  private done = false;

  constructor(
    private readonly inner: Duplex,
    header: Uint8Array,
    spec: CipherSpec,
    masterKey: Uint8Array,
    provider: AeadProvider,
    prefix: Uint8Array | undefined,
    private readonly timing: StreamTiming,
  ) {
    this.header = header;
    this.enc = new AeadEncryptor(spec, masterKey, { prefix, provider });
    this.dec = new AeadDecryptor(spec, masterKey, provider);
    this.holdTimer = setTimeout(() => this.flushHeader(), timing.holdMs);
  }

  start(h: DuplexHandlers): void {
    if (!this.inbox.start(h)) return;
    this.inner.start({
      data: (d) => this.onInnerData(d),
      end: () => this.onInnerEnd(),
      drain: () => {
        if (!this.done) this.inbox.drain();
      },
      close: (err) => this.terminate(err, true),
    });
  }

  write(chunk: Uint8Array): boolean {
    if (this.done || this.writeClosed) return false;
    if (chunk.length === 0) return true;
    let plain = chunk;
    if (this.header) {
      plain = new Uint8Array(this.header.length + chunk.length);
      plain.set(this.header);
      plain.set(chunk, this.header.length);
      this.header = null;
      clearTimeout(this.holdTimer);
    }
    const ok = this.inner.write(this.enc.seal(plain));
    this.armResponseTimer();
    return ok;
  }

  closeWrite(): void {
    if (this.done || this.writeClosed) return;
    this.flushHeader();
    this.writeClosed = true;
    this.inner.closeWrite();
  }

  close(err?: StreamError): void {
    this.terminate(err, false);
  }

  pause(): void {
    this.inbox.pause();
    if (!this.done) this.inner.pause();
  }

  resume(): void {
    this.inbox.resume();
    if (!this.inbox.isPaused && !this.done) this.inner.resume();
  }

  private flushHeader(): void {
    if (!this.header || this.done || this.writeClosed) return;
    clearTimeout(this.holdTimer);
    const header = this.header;
    this.header = null;
    this.inner.write(this.enc.seal(header));
    this.armResponseTimer();
  }

  private armResponseTimer(): void {
    if (this.responseArmed || this.confirmed) return;
    this.responseArmed = true;
    const ms = this.timing.responseTimeoutMs;
    if (ms <= 0) return;
    this.responseTimer = setTimeout(() => {
      this.terminate(
        new StreamError(
          "upstream_timeout",
          `no response from the Shadowsocks server within ${ms} ms (wrong password or method, or a silent target)`,
        ),
        false,
      );
    }, ms);
  }

  private onInnerData(d: Uint8Array): void {
    if (this.done) return;
    const pieces = this.dec.push(d);
    if (pieces instanceof StreamError) {
      this.terminate(new StreamError("upstream_protocol_error", `bad data from the Shadowsocks server (${pieces.code})`), false);
      return;
    }
    if (pieces.length === 0) return;
    if (!this.confirmed) {
      this.confirmed = true;
      clearTimeout(this.responseTimer);
      this.timing.onConfirmed();
    }
    // One read's chunks go on as one piece: a 64 KiB read is four 16 KiB chunks, and one
    // copy here is cheaper than four stream_data frames, four WebSocket messages and four
    // writes to the application's socket on the client.
    this.inbox.deliver(pieces.length === 1 ? pieces[0]! : joinChunks(pieces));
  }

  private onInnerEnd(): void {
    if (this.done) return;
    clearTimeout(this.responseTimer);
    if (!this.dec.atBoundary) {
      this.terminate(new StreamError("upstream_protocol_error", "the Shadowsocks server closed in the middle of a chunk"), false);
      return;
    }
    this.inbox.end();
  }

  /** `graceful`: the inner stream finished normally, so data and end already decrypted still go out first. */
  private terminate(err: StreamError | undefined, graceful: boolean): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.holdTimer);
    clearTimeout(this.responseTimer);
    this.inner.close(err);
    if (graceful && !err) this.inbox.closeAfterData();
    else this.inbox.close(err);
  }
}
