// Seeded input generators for fuzzing the codec: the normal suite's 200k-input loop
// (codec.test.ts) and the stress suite's million-frame and live-session runs share them.
// Pure, like the codec: no I/O, the same sequence on every runtime.

export function prng(seed: number): () => number {
  // mulberry32: small, fast, and the same sequence on every runtime.
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const ATOMS = [
  '"',
  "\\",
  "{",
  "}",
  "[",
  "]",
  ":",
  ",",
  "null",
  "true",
  "-1",
  "1e400",
  "65536",
  '"s1"',
  '"=="',
  "\\u0000",
  "é",
  "\ud800",
  " ",
  "\n",
  '"type"',
  '"stream_data"',
  '"data"',
  "0",
  "2147483648",
];

export function mutateText(s: string, rnd: () => number): string {
  const ops = 1 + (rnd() % 4);
  for (let k = 0; k < ops; k++) {
    const at = s.length ? rnd() % (s.length + 1) : 0;
    switch (rnd() % 6) {
      case 0: // replace one character
        s = s.slice(0, at) + String.fromCharCode(rnd() % 130) + s.slice(at + 1);
        break;
      case 1: // delete a run
        s = s.slice(0, at) + s.slice(at + 1 + (rnd() % 8));
        break;
      case 2: // insert a JSON-significant atom
        s = s.slice(0, at) + ATOMS[rnd() % ATOMS.length] + s.slice(at);
        break;
      case 3: // truncate
        s = s.slice(0, at);
        break;
      case 4: // duplicate a slice
        s = s.slice(0, at) + s.slice(at, at + (rnd() % 20)) + s.slice(at);
        break;
      default: // swap in a random base64-ish char (keeps the fast path busy)
        s = s.slice(0, at) + "A+/=a9_-"[rnd() % 8] + s.slice(at + 1);
    }
  }
  return s;
}

export function mutateBytes(b: Uint8Array, rnd: () => number): Uint8Array {
  const out = Array.from(b);
  const ops = 1 + (rnd() % 3);
  for (let k = 0; k < ops; k++) {
    const at = rnd() % (out.length + 1);
    switch (rnd() % 4) {
      case 0:
        out[at] = rnd() & 255;
        break;
      case 1:
        out.splice(at, 1 + (rnd() % 4));
        break;
      case 2:
        out.splice(at, 0, rnd() & 255);
        break;
      default:
        out.length = at;
    }
  }
  return new Uint8Array(out);
}

export function randomValue(rnd: () => number, depth: number): unknown {
  switch (rnd() % (depth > 2 ? 6 : 8)) {
    case 0:
      return null;
    case 1:
      return rnd() % 2 === 0;
    case 2:
      return [0, 1, -1, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 1.5, 1e300][rnd() % 9];
    case 3:
      return ["", "s1", "aGVsbG8=", "flow", "binary", "x".repeat(rnd() % 300), "a b", "=="][rnd() % 8];
    case 4:
      return [
        "hello",
        "stream_data",
        "stream_open",
        "window_update",
        "stream_end",
        "stream_close",
        "ping",
        "error",
        "auth_result",
        "goaway",
      ][rnd() % 10];
    case 5:
      return rnd() % 1000;
    case 6:
      return Array.from({ length: rnd() % 4 }, () => randomValue(rnd, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const keys = [
        "type",
        "stream_id",
        "data",
        "target",
        "host",
        "port",
        "increment",
        "ok",
        "features",
        "window",
        "limits",
        "code",
        "message",
        "id",
        "device_id",
        "token",
        "client_version",
        "session_id",
      ];
      for (let i = rnd() % 6; i > 0; i--) o[keys[rnd() % keys.length]!] = randomValue(rnd, depth + 1);
      return o;
    }
  }
}
