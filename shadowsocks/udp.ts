// Shadowsocks AEAD over UDP: every datagram is salt ‖ seal(subkey(salt), nonce 0, address ‖ payload).
// No chunks, no length, a fresh salt per packet; replies carry the replying source's address.
import { StreamError, type Target } from "../transport/stream.ts";
import { type AeadProvider, type CipherSpec, NONCE_LEN, TAG_LEN } from "./aead.ts";
import { cipherSpec, providerFor } from "./ciphers.ts";
import { decodeAddress, encodeAddress } from "../protocol/socks-address.ts";
import { makeSalt } from "./aead-stream.ts";
import { evpBytesToKey, sessionSubkey } from "./kdf.ts";

export interface UdpPacket {
  target: Target;
  payload: Uint8Array;
}

const ZERO_NONCE = new Uint8Array(NONCE_LEN);

export class UdpCodec {
  readonly spec: CipherSpec;
  private readonly masterKey: Uint8Array;
  private readonly provider: AeadProvider;

  /** `key`: the password, or an already derived master key. */
  constructor(method: string, key: string | Uint8Array, provider?: AeadProvider) {
    this.spec = cipherSpec(method);
    this.masterKey = typeof key === "string" ? evpBytesToKey(key, this.spec.keyLen) : Uint8Array.from(key);
    if (this.masterKey.length !== this.spec.keyLen) {
      throw new StreamError("ss_bad_key", `${this.spec.method} needs a ${this.spec.keyLen}-byte master key`);
    }
    this.provider = provider ?? providerFor(this.spec);
  }

  /** One datagram. `salt` only for reproducing a capture; normally random. */
  encode(target: Target | Uint8Array, payload: Uint8Array, salt?: Uint8Array): Uint8Array {
    const addr = target instanceof Uint8Array ? target : encodeAddress(target);
    const s = salt ?? makeSalt(this.spec);
    if (s.length !== this.spec.saltLen) {
      throw new StreamError("ss_bad_salt", `${this.spec.method} needs a ${this.spec.saltLen}-byte salt`);
    }
    const plain = new Uint8Array(addr.length + payload.length);
    plain.set(addr);
    plain.set(payload, addr.length);
    const out = new Uint8Array(s.length + plain.length + TAG_LEN);
    out.set(s);
    this.provider.key(this.spec, sessionSubkey(this.masterKey, s)).sealInto(ZERO_NONCE, plain, out, s.length);
    return out;
  }

  /** The address and payload of one datagram, or `ss_bad_packet` / `ss_auth_failed` / `bad_address`. */
  decode(packet: Uint8Array): UdpPacket | StreamError {
    const saltLen = this.spec.saltLen;
    if (packet.length < saltLen + TAG_LEN + 1) {
      return new StreamError("ss_bad_packet", `datagram of ${packet.length} bytes is too short`);
    }
    const salt = packet.subarray(0, saltLen);
    const plain = this.provider.key(this.spec, sessionSubkey(this.masterKey, salt)).open(ZERO_NONCE, packet.subarray(saltLen));
    if (plain === null) return new StreamError("ss_auth_failed", "a Shadowsocks datagram failed authentication");
    const addr = decodeAddress(plain);
    if (addr instanceof StreamError) return addr.code === "short_address" ? new StreamError("bad_address", addr.message) : addr;
    return { target: { host: addr.host, port: addr.port }, payload: plain.subarray(addr.length) };
  }
}
