// The salt replay defence of a Shadowsocks server, as outline-ss-server keeps it
// (Jigsaw-Code/outline-ss-server service/replay.go): remember the salt of every authenticated
// handshake; a salt seen again is a replay (a prober re-sending a captured connection) and the
// connection is treated as a probe. Two generations bound the memory: when the active set holds
// `capacity` entries it becomes the archive and the old archive is dropped, so between
// `capacity` and 2·capacity of the latest handshakes are remembered.
//
// Outline stores a 32-bit XOR fold of (key id, salt); we store 48 bits of HMAC-SHA256 under a
// key drawn per cache. The false-positive rate is then 2·capacity/2⁴⁸ (7·10⁻¹¹ at the default)
// instead of 2·capacity/2³², and nobody without the key can craft a salt that collides with
// another device's and gets its reconnects refused. One HMAC per handshake costs microseconds.
import { createHmac } from "node:crypto";

/** Outline's own servers run with --replay_history 10000 (outline-ss-server service/PROBES.md). */
export const REPLAY_DEFAULT_CAPACITY = 10_000;
/** 2·100,000 entries of ~40 bytes each (a Set of numbers) bound the cache at about 8 MB. */
export const REPLAY_MAX_CAPACITY = 100_000;

export class ReplayCacheError extends Error {
  readonly code = "bad_replay_capacity";
  constructor(message: string) {
    super(message);
    this.name = "ReplayCacheError";
  }
}

const utf8 = new TextEncoder();

export class ReplayCache {
  private active = new Set<number>();
  private archive = new Set<number>();
  private readonly key = crypto.getRandomValues(new Uint8Array(32));

  /** `capacity` 0 turns the defence off (every salt is new), as `--replay_history 0` does. */
  constructor(readonly capacity: number = REPLAY_DEFAULT_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 0 || capacity > REPLAY_MAX_CAPACITY) {
      throw new ReplayCacheError(`the replay cache capacity must be an integer 0-${REPLAY_MAX_CAPACITY}, got ${capacity}`);
    }
  }

  /** Entries remembered now: at most 2·capacity. */
  get size(): number {
    return this.active.size + this.archive.size;
  }

  /**
   * Records the salt of an authenticated handshake with key `keyId`; false when it was already
   * recorded (a replay). Call it only after the first chunk authenticated, so garbage from
   * probers never evicts real salts.
   */
  add(keyId: string, salt: Uint8Array): boolean {
    if (this.capacity === 0) return true;
    const h = this.hash(keyId, salt);
    if (this.active.has(h)) return false;
    const inArchive = this.archive.has(h);
    if (this.active.size >= this.capacity) {
      this.archive = this.active;
      this.active = new Set();
    }
    // A replay found in the archive is recorded again, so it stays remembered for another generation.
    this.active.add(h);
    return !inArchive;
  }

  private hash(keyId: string, salt: Uint8Array): number {
    const id = utf8.encode(keyId);
    // The id's length first, so ("ab", salt) and ("a", "b" ‖ salt) differ.
    const idLen = Uint8Array.of(id.length >>> 24, (id.length >>> 16) & 0xff, (id.length >>> 8) & 0xff, id.length & 0xff);
    const d = createHmac("sha256", this.key).update(idLen).update(id).update(salt).digest();
    return d.readUIntBE(0, 6);
  }
}
