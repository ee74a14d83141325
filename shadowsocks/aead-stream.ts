// One direction of a Shadowsocks AEAD TCP stream: salt ‖ chunk ‖ chunk ‖ …, where a chunk is
// seal(2-byte big-endian length) ‖ seal(payload) under the direction's subkey and a
// little-endian counter nonce that advances after every seal/open.
// This is the tunnel's hot path: the encryptor writes every chunk of one write into a single
// output array, and the decryptor opens whole chunks straight out of the caller's input
// (subarray views); it copies only the bytes of a chunk that straddles two inputs.
import { StreamError } from "../transport/stream.ts";
import { type AeadKey, type AeadProvider, type CipherSpec, NONCE_LEN, TAG_LEN } from "./aead.ts";
import { providerFor } from "./ciphers.ts";
import { sessionSubkey } from "./kdf.ts";
import { UnitReader } from "../protocol/unit-reader.ts";

/** The largest payload of one chunk: the top two bits of the length must be zero. */
export const MAX_PAYLOAD = 0x3fff;
const LEN_BLOCK = 2 + TAG_LEN;
const CHUNK_OVERHEAD = LEN_BLOCK + TAG_LEN;

export interface EncryptorOptions {
  /** Use this exact salt (tests re-creating captures); otherwise random. */
  salt?: Uint8Array;
  /** Fixed first bytes of a random salt (Outline's `prefix`); must be shorter than the salt. */
  prefix?: Uint8Array;
  provider?: AeadProvider;
}

/** A fresh salt: `prefix` followed by random bytes. */
export function makeSalt(spec: CipherSpec, prefix?: Uint8Array): Uint8Array {
  const salt = new Uint8Array(spec.saltLen);
  const p = prefix?.length ?? 0;
  if (p >= spec.saltLen) {
    throw new StreamError("ss_bad_prefix", `the salt prefix must be shorter than the ${spec.saltLen}-byte salt, got ${p} bytes`);
  }
  // A repeated salt is what outline-ss-server's replay defence rejects, so it must never repeat.
  crypto.getRandomValues(salt.subarray(p));
  if (prefix) salt.set(prefix);
  return salt;
}

function bumpNonce(nonce: Uint8Array): void {
  for (let i = 0; i < NONCE_LEN; i++) {
    nonce[i] = (nonce[i]! + 1) & 0xff;
    if (nonce[i] !== 0) return;
  }
}

export class AeadEncryptor {
  readonly salt: Uint8Array;
  private saltSent = false;
  private readonly aead: AeadKey;
  private readonly nonce = new Uint8Array(NONCE_LEN);
  private readonly lenPlain = new Uint8Array(2);

  constructor(readonly spec: CipherSpec, masterKey: Uint8Array, opts: EncryptorOptions = {}) {
    if (opts.salt && opts.salt.length !== spec.saltLen) {
      throw new StreamError("ss_bad_salt", `${spec.method} needs a ${spec.saltLen}-byte salt, got ${opts.salt.length}`);
    }
    this.salt = opts.salt ? Uint8Array.from(opts.salt) : makeSalt(spec, opts.prefix);
    this.aead = (opts.provider ?? providerFor(spec)).key(spec, sessionSubkey(masterKey, this.salt));
  }

  /**
   * Wire bytes for one write: the salt on the first call, then one chunk per 0x3FFF bytes.
   * An empty write yields nothing (an empty chunk is a protocol error for libev).
   */
  seal(plaintext: Uint8Array): Uint8Array {
    const n = plaintext.length;
    if (n === 0) return new Uint8Array(0);
    const chunks = Math.ceil(n / MAX_PAYLOAD);
    const head = this.saltSent ? 0 : this.salt.length;
    const out = new Uint8Array(head + n + chunks * CHUNK_OVERHEAD);
    if (head) {
      out.set(this.salt);
      this.saltSent = true;
    }
    let o = head;
    for (let i = 0; i < n; i += MAX_PAYLOAD) {
      const m = Math.min(MAX_PAYLOAD, n - i);
      this.lenPlain[0] = m >>> 8;
      this.lenPlain[1] = m & 0xff;
      this.aead.sealInto(this.nonce, this.lenPlain, out, o);
      bumpNonce(this.nonce);
      o += LEN_BLOCK;
      this.aead.sealInto(this.nonce, plaintext.subarray(i, i + m), out, o);
      bumpNonce(this.nonce);
      o += m + TAG_LEN;
    }
    return out;
  }
}

// Plain numbers rather than an enum: enums are not erasable TypeScript syntax.
const Phase = { Salt: 0, Length: 1, Payload: 2 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/**
 * The receiving direction: `push` any fragment of the stream, get the plaintext of every chunk it
 * completed (each a fresh array), or the error that ended the stream — `ss_auth_failed` for a tag
 * that does not verify, `ss_bad_length` for a length of 0 or above 0x3FFF — and that error from then on.
 */
export class AeadDecryptor extends UnitReader<Uint8Array> {
  private phase: Phase = Phase.Salt;
  private aead: AeadKey | null = null;
  private readonly nonce = new Uint8Array(NONCE_LEN);
  private readonly provider: AeadProvider;
  /** The peer's salt, once read. */
  salt: Uint8Array | null = null;

  constructor(readonly spec: CipherSpec, private readonly masterKey: Uint8Array, provider?: AeadProvider) {
    super(spec.saltLen);
    this.provider = provider ?? providerFor(spec);
  }

  /** True between chunks: the input so far ended on a chunk boundary (a clean place for EOF). */
  get atBoundary(): boolean {
    return !this.midUnit && (this.phase === Phase.Length || this.phase === Phase.Salt);
  }

  protected consume(unit: Uint8Array, out: Uint8Array[]): StreamError | null {
    switch (this.phase) {
      case Phase.Salt:
        this.salt = Uint8Array.from(unit);
        this.aead = this.provider.key(this.spec, sessionSubkey(this.masterKey, this.salt));
        this.phase = Phase.Length;
        this.need = LEN_BLOCK;
        return null;
      case Phase.Length: {
        const p = this.aead!.open(this.nonce, unit);
        bumpNonce(this.nonce);
        if (p === null) return new StreamError("ss_auth_failed", "a Shadowsocks length block failed authentication");
        const n = (p[0]! << 8) | p[1]!;
        if (n === 0 || n > MAX_PAYLOAD) {
          return new StreamError("ss_bad_length", `Shadowsocks chunk length ${n} outside 1..${MAX_PAYLOAD}`);
        }
        this.phase = Phase.Payload;
        this.need = n + TAG_LEN;
        return null;
      }
      case Phase.Payload: {
        const p = this.aead!.open(this.nonce, unit);
        bumpNonce(this.nonce);
        if (p === null) return new StreamError("ss_auth_failed", "a Shadowsocks payload block failed authentication");
        out.push(p);
        this.phase = Phase.Length;
        this.need = LEN_BLOCK;
        return null;
      }
    }
  }
}

/** The plaintext chunks one input completed, as one array (one piece per read goes on, not one per chunk). */
export function joinChunks(pieces: Uint8Array[]): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  let n = 0;
  for (const p of pieces) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of pieces) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
