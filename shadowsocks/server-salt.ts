// Server salts that are secretly marked, so a server refuses its own output sent back to it
// (a reflection probe: replaying the server→client bytes as a client→server stream, which
// decrypts, since Shadowsocks uses one key for both directions). After outline-ss-server
// service/server_salt.go: the last 4 salt bytes are HMAC-SHA1(key, rest of the salt), with
// key = HKDF-SHA1(secret, no salt, info "outline-server-salt"), 20 bytes. A client's random
// salt carries the mark by chance with probability 2⁻³², and is then refused like a replay.
import { createHmac, timingSafeEqual } from "node:crypto";
import { hkdfSha1 } from "./kdf.ts";

const MARK_LEN = 4;
const LABEL = new TextEncoder().encode("outline-server-salt");

export class ServerSaltMarker {
  private readonly key: Uint8Array;

  /** `secret` is the Shadowsocks password of the key the salts are used with. */
  constructor(secret: string) {
    this.key = hkdfSha1(new TextEncoder().encode(secret), new Uint8Array(0), LABEL, 20);
  }

  /** A salt for the server's direction of a stream: random, then the mark. */
  makeSalt(saltLen: number): Uint8Array {
    const salt = new Uint8Array(saltLen);
    crypto.getRandomValues(salt.subarray(0, saltLen - MARK_LEN));
    salt.set(this.tag(salt.subarray(0, saltLen - MARK_LEN)), saltLen - MARK_LEN);
    return salt;
  }

  /** Whether an incoming salt bears the mark: the client is replaying a server stream (Outline's ERR_REPLAY_SERVER). */
  isServerSalt(salt: Uint8Array): boolean {
    if (salt.length <= MARK_LEN) return false;
    return timingSafeEqual(this.tag(salt.subarray(0, salt.length - MARK_LEN)), salt.subarray(salt.length - MARK_LEN));
  }

  private tag(prefix: Uint8Array): Uint8Array {
    return new Uint8Array(createHmac("sha1", this.key).update(prefix).digest().subarray(0, MARK_LEN));
  }
}
