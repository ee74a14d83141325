// The reading half both stream decoders share (Shadowsocks AEAD chunks, Mux.Cool frames): a byte
// stream fed in arbitrary pieces is cut into the units its parser asks for one after another
// (a salt, a length block, a payload …). This is the tunnel's hot path, so a unit that lies whole
// inside one input is handed over as a subarray view of it; only a unit that straddles inputs is
// copied, once, into an array of exactly its size. Pure: no I/O.
import { StreamError } from "./errors.ts";

export abstract class UnitReader<T> {
  /** Bytes the parser needs for its next unit; 0 hands it an empty unit at once. */
  protected need: number;
  /** A unit that arrived split across inputs, filled up to `partialFill`. */
  private partial: Uint8Array | null = null;
  private partialFill = 0;
  private failed: StreamError | null = null;

  constructor(firstNeed: number) {
    this.need = firstNeed;
  }

  /** One unit of exactly `need` bytes: push results to `out`, set the next `need`, or return the error that ends the stream. */
  protected abstract consume(unit: Uint8Array, out: T[]): StreamError | null;

  /** True while a unit is split across inputs (not a clean place for the stream to end). */
  protected get midUnit(): boolean {
    return this.partial !== null;
  }

  /** Whether an error has ended the stream. */
  protected get hasFailed(): boolean {
    return this.failed !== null;
  }

  /** Bytes held for a unit that straddles inputs. */
  get buffered(): number {
    return this.partial?.length ?? 0;
  }

  /** Feed the next bytes; returns what the units they completed produced, or the error that ended the stream (then always that error). Never throws. */
  push(input: Uint8Array): T[] | StreamError {
    if (this.failed) return this.failed;
    const out: T[] = [];
    const len = input.length;
    let pos = 0;
    while (pos < len || this.need === 0) {
      let unit: Uint8Array;
      const need = this.need;
      if (this.partial !== null) {
        const take = Math.min(need - this.partialFill, len - pos);
        this.partial.set(input.subarray(pos, pos + take), this.partialFill);
        this.partialFill += take;
        pos += take;
        if (this.partialFill < need) break;
        unit = this.partial;
        this.partial = null;
        this.partialFill = 0;
      } else if (len - pos >= need) {
        unit = input.subarray(pos, pos + need);
        pos += need;
      } else {
        this.partial = new Uint8Array(need);
        this.partial.set(input.subarray(pos));
        this.partialFill = len - pos;
        break;
      }
      const err = this.consume(unit, out);
      if (err) {
        this.failed = err;
        this.partial = null;
        return err;
      }
    }
    return out;
  }
}
