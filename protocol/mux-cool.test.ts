import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { StreamError } from "../transport/stream.ts";
import {
  encodeMuxEnd,
  encodeMuxFrame,
  encodeMuxKeep,
  isMuxCoolTarget,
  looksLikeMuxCool,
  MUX_DEFAULT_MAX_DATA,
  MUX_MAX_DATA,
  MuxCoolDecoder,
  type MuxFrame,
} from "./mux-cool.ts";
import { prng } from "./fuzz.testing.ts";
import { concatBytes, fromHex, toHex } from "../shadowsocks/test-vectors.ts";

const hex = (s: string) => fromHex(s.replace(/\s+/g, ""));
const concat = (...parts: Uint8Array[]) => concatBytes(parts);
const payload = (n: number, seed = 1) => {
  const rnd = prng(seed);
  return Uint8Array.from({ length: n }, () => rnd() & 0xff);
};

// mihomo transport/v2ray-plugin/mux.go: New to 127.0.0.1:0, Keep+data, End (option 0x00).
const MIHOMO_NEW = hex("000c 0000 01 00 01 0000 01 7f000001");
const mihomoKeep = (data: Uint8Array) =>
  concat(hex("0004 0000 02 01"), Uint8Array.of(data.length >> 8, data.length & 0xff), data);
const MIHOMO_END = hex("0004 0000 03 00");
// sing-vmess mux_wrapper.go: the first write is New+Data to TCP v1.mux.cool:666 (MetaLen 0x14).
const singBoxNew = (data: Uint8Array) =>
  concat(
    hex("0014 0000 01 01 01 029a 02 0b"),
    new TextEncoder().encode("v1.mux.cool"),
    Uint8Array.of(data.length >> 8, data.length & 0xff),
    data,
  );

function decodeAll(wire: Uint8Array, cuts: number[] = []): MuxFrame[] | StreamError {
  const dec = new MuxCoolDecoder();
  const frames: MuxFrame[] = [];
  let prev = 0;
  for (const cut of [...cuts, wire.length]) {
    const r = dec.push(wire.subarray(prev, cut));
    if (r instanceof StreamError) return r;
    frames.push(...r);
    prev = cut;
  }
  assert.ok(dec.atBoundary, "the stream ended between frames");
  return frames;
}

/** Frames with their data as hex, for deepEqual across copies and views. */
function plain(frames: MuxFrame[] | StreamError) {
  assert.ok(Array.isArray(frames), frames instanceof StreamError ? frames.message : "");
  return frames.map((f) => ({ ...f, data: f.data && toHex(f.data), globalId: f.globalId && toHex(f.globalId) }));
}

function errorCode(wire: Uint8Array): string {
  const r = new MuxCoolDecoder().push(wire);
  assert.ok(r instanceof StreamError, `accepted ${toHex(wire)}`);
  return r.code;
}

describe("Mux.Cool frames the known clients send", () => {
  test("mihomo's New, Keep and End", () => {
    const data = payload(300);
    assert.deepEqual(plain(decodeAll(concat(MIHOMO_NEW, mihomoKeep(data), MIHOMO_END))), [
      {
        sessionId: 0,
        status: "new",
        error: false,
        network: "tcp",
        target: { host: "127.0.0.1", port: 0 },
        data: undefined,
        globalId: undefined,
      },
      { sessionId: 0, status: "keep", error: false, data: toHex(data), globalId: undefined },
      { sessionId: 0, status: "end", error: false, data: undefined, globalId: undefined },
    ]);
  });

  test("sing-box's New with data to v1.mux.cool:666, then Keep", () => {
    const first = payload(50, 2);
    const next = payload(70, 3);
    const frames = decodeAll(concat(singBoxNew(first), mihomoKeep(next)));
    assert.deepEqual(plain(frames), [
      {
        sessionId: 0,
        status: "new",
        error: false,
        network: "tcp",
        target: { host: "v1.mux.cool", port: 666 },
        data: toHex(first),
        globalId: undefined,
      },
      { sessionId: 0, status: "keep", error: false, data: toHex(next), globalId: undefined },
    ]);
    assert.ok(isMuxCoolTarget((frames as MuxFrame[])[0]!.target!));
  });

  test("the encoder writes the same bytes as mihomo and sing-box", () => {
    const data = payload(20);
    const mihomoNew = encodeMuxFrame({ sessionId: 0, status: "new", network: "tcp", target: { host: "127.0.0.1", port: 0 } });
    assert.equal(toHex(mihomoNew), toHex(MIHOMO_NEW));
    assert.equal(toHex(encodeMuxKeep(0, data)), toHex(mihomoKeep(data)));
    assert.equal(toHex(encodeMuxEnd(0)), toHex(MIHOMO_END));
    assert.equal(toHex(encodeMuxEnd(7, true)), "000400070302");
    const sb = encodeMuxFrame({ sessionId: 0, status: "new", network: "tcp", target: { host: "v1.mux.cool", port: 666 }, data });
    assert.equal(toHex(sb), toHex(singBoxNew(data)));
  });

  test("a v2ray client's sessions 1, 2 …, IPv6 and domain targets, UDP", () => {
    const frames: MuxFrame[] = [
      { sessionId: 1, status: "new", error: false, network: "tcp", target: { host: "2001:db8::1", port: 443 } },
      { sessionId: 2, status: "new", error: false, network: "udp", target: { host: "1.1.1.1", port: 53 }, data: payload(33) },
      {
        sessionId: 3,
        status: "new",
        error: false,
        network: "tcp",
        target: { host: "пример.рф", port: 80 },
        data: new Uint8Array(0),
      },
      { sessionId: 2, status: "keep", error: false, data: payload(9) },
      { sessionId: 1, status: "end", error: true },
      { sessionId: 65535, status: "keepalive", error: false },
    ];
    const wire = concat(...frames.map((f) => encodeMuxFrame(f)));
    assert.deepEqual(plain(decodeAll(wire)), plain(frames));
  });
});

describe("Xray's XUDP metadata", () => {
  test("a UDP New with data carries the GlobalID after the address", () => {
    const globalId = hex("0102030405060708");
    const f = encodeMuxFrame({
      sessionId: 4,
      status: "new",
      network: "udp",
      target: { host: "8.8.8.8", port: 53 },
      data: payload(12),
      globalId,
    });
    assert.equal(toHex(f.subarray(0, 2)), "0014", "MetaLen = 4 + 1 + 2 + 1 + 4 + 8");
    const [frame] = decodeAll(f) as MuxFrame[];
    assert.equal(toHex(frame!.globalId!), toHex(globalId));
    assert.notEqual(frame!.globalId!.buffer, f.buffer, "the GlobalID is a copy");
  });

  test("trailing metadata without data, or on TCP, is skipped, not read as a GlobalID", () => {
    const tcpWithTrailer = hex("0014 0009 01 01 01 0050 01 0a000001 0102030405060708 0001 ff");
    assert.deepEqual(plain(decodeAll(tcpWithTrailer)), [
      {
        sessionId: 9,
        status: "new",
        error: false,
        network: "tcp",
        target: { host: "10.0.0.1", port: 80 },
        data: "ff",
        globalId: undefined,
      },
    ]);
    const udpNoData = hex("0014 0009 01 00 02 0050 01 0a000001 0102030405060708");
    assert.equal((decodeAll(udpNoData) as MuxFrame[])[0]!.globalId, undefined);
  });

  test("a UDP Keep may name its packet's address; other Keep metadata is skipped", () => {
    const keepUdp = encodeMuxFrame({
      sessionId: 5,
      status: "keep",
      network: "udp",
      target: { host: "9.9.9.9", port: 5353 },
      data: payload(5),
    });
    assert.equal(toHex(keepUdp.subarray(0, 7)), "000c0005020102", "MetaLen 12, Keep, Data, then 0x02");
    assert.deepEqual(plain(decodeAll(keepUdp)), [
      {
        sessionId: 5,
        status: "keep",
        error: false,
        network: "udp",
        target: { host: "9.9.9.9", port: 5353 },
        data: toHex(payload(5)),
        globalId: undefined,
      },
    ]);
    const keepPadded = hex("0007 0005 02 01 00 aaaa 0001 42");
    assert.deepEqual(plain(decodeAll(keepPadded)), [{
      sessionId: 5,
      status: "keep",
      error: false,
      data: "42",
      globalId: undefined,
    }]);
  });
});

describe("Mux.Cool decoder: streaming", () => {
  const data = payload(1000, 9);
  const wire = concat(
    MIHOMO_NEW,
    mihomoKeep(data.subarray(0, 10)),
    encodeMuxFrame({ sessionId: 0, status: "keep", data: new Uint8Array(0) }),
    encodeMuxFrame({ sessionId: 0, status: "keepalive", data: payload(3) }),
    singBoxNew(data.subarray(10, 40)),
    encodeMuxFrame({ sessionId: 1, status: "new", network: "udp", target: { host: "::ffff:1.2.3.4", port: 9 } }),
    encodeMuxKeep(0, data.subarray(40), 300),
    MIHOMO_END,
  );
  const expected = plain(decodeAll(wire));

  test("every two-piece split gives the same frames", () => {
    assert.equal(expected.length, 11);
    for (let cut = 0; cut <= wire.length; cut++) assert.deepEqual(plain(decodeAll(wire, [cut])), expected, `cut at ${cut}`);
  });

  test("every three-piece split around each frame boundary, and byte by byte", () => {
    for (let a = 0; a <= wire.length; a += 7) {
      for (let b = a; b <= Math.min(wire.length, a + 40); b++) assert.deepEqual(plain(decodeAll(wire, [a, b])), expected);
    }
    const bytewise = Array.from({ length: wire.length - 1 }, (_, i) => i + 1);
    assert.deepEqual(plain(decodeAll(wire, bytewise)), expected);
  });

  test("a frame whole in one input is a view of it; a straddling one is a copy", () => {
    const whole = concat(mihomoKeep(data));
    const [f] = new MuxCoolDecoder().push(whole) as MuxFrame[];
    assert.equal(f!.data!.buffer, whole.buffer);
    assert.equal(f!.data!.byteOffset, 8);
    const dec = new MuxCoolDecoder();
    assert.deepEqual(dec.push(whole.subarray(0, 100)), []);
    assert.equal(dec.buffered, 1000, "holds exactly the straddling data");
    assert.equal(dec.atBoundary, false);
    const [g] = dec.push(whole.subarray(100)) as MuxFrame[];
    assert.notEqual(g!.data!.buffer, whole.buffer);
    assert.equal(toHex(g!.data!), toHex(data));
    assert.equal(dec.buffered, 0);
  });

  test("a zero DataLen at the very end of an input completes the frame", () => {
    const frame = encodeMuxFrame({ sessionId: 3, status: "keep", data: new Uint8Array(0) });
    assert.equal(toHex(frame), "00040003020100" + "00");
    const dec = new MuxCoolDecoder();
    assert.deepEqual(dec.push(frame.subarray(0, 7)), []);
    assert.deepEqual(plain(dec.push(frame.subarray(7))), [{
      sessionId: 3,
      status: "keep",
      error: false,
      data: "",
      globalId: undefined,
    }]);
  });
});

describe("Mux.Cool decoder: bad input is a typed error, never a throw", () => {
  const cases: [string, string, string][] = [
    ["MetaLen 3", "0003 000102", "mux_bad_metalen"],
    ["MetaLen 513 (v2fly: invalid metalen)", "0201", "mux_bad_metalen"],
    ["a raw Shadowsocks salt", "9f3c1e", "mux_bad_metalen"],
    ["MetaLen 0", "0000", "mux_bad_metalen"],
    ["status 0", "0004 0000 00 00", "mux_bad_status"],
    ["status 5", "0004 0000 05 00", "mux_bad_status"],
    ["New with 7 bytes of metadata", "0007 0000 01 00 01 0000", "mux_bad_metalen"],
    ["network 3", "000c 0000 01 00 03 0000 01 7f000001", "mux_bad_network"],
    ["address type 4", "000c 0000 01 00 01 0000 04 7f000001", "mux_bad_address"],
    ["IPv4 cut by MetaLen", "000b 0000 01 00 01 0000 01 7f0000", "mux_bad_address"],
    ["IPv6 cut by MetaLen", "000c 0000 01 00 01 0000 03 20010db8", "mux_bad_address"],
    ["empty domain", "0009 0000 01 00 01 0050 02 00", "mux_bad_address"],
    ["domain past MetaLen", "000a 0000 01 00 01 0050 02 05 61", "mux_bad_address"],
    ["domain not UTF-8", "000a 0000 01 00 01 0050 02 01 ff", "mux_bad_address"],
    ["UDP Keep address in 6 bytes", "0006 0000 02 00 02 00", "mux_bad_metalen"],
    ["UDP Keep with a bad address type", "000a 0000 02 00 02 0035 07 000000", "mux_bad_address"],
  ];
  for (const [name, wire, code] of cases) {
    test(`${name} → ${code}`, () => assert.equal(errorCode(hex(wire)), code));
  }

  test("the error is sticky and no frame after it is returned", () => {
    const dec = new MuxCoolDecoder();
    const first = dec.push(concat(MIHOMO_NEW, hex("0004 0000 09 00"), MIHOMO_END));
    assert.ok(first instanceof StreamError && first.code === "mux_bad_status");
    assert.equal(dec.push(MIHOMO_NEW), first);
    assert.equal(dec.atBoundary, false);
  });

  test("fuzz: random and mutated streams in random pieces never throw and never hold more than 65,535 bytes", () => {
    const rnd = prng(0x6d75786d);
    const valid = concat(MIHOMO_NEW, mihomoKeep(payload(500)), singBoxNew(payload(40)), MIHOMO_END);
    let errors = 0;
    let frames = 0;
    for (let round = 0; round < 3000; round++) {
      let wire: Uint8Array;
      if (round % 3 === 0) wire = payload(1 + (rnd() % 2000), round);
      else {
        wire = Uint8Array.from(valid);
        for (let k = 1 + (rnd() % 4); k > 0; k--) wire[rnd() % wire.length] = rnd() & 0xff;
      }
      const dec = new MuxCoolDecoder();
      for (let pos = 0; pos < wire.length;) {
        const n = 1 + (rnd() % 300);
        const r = dec.push(wire.subarray(pos, pos + n));
        assert.ok(dec.buffered <= MUX_MAX_DATA);
        if (r instanceof StreamError) {
          assert.match(r.code, /^mux_bad_(metalen|status|network|address)$/);
          errors++;
          break;
        }
        frames += r.length;
        pos += n;
      }
    }
    assert.ok(errors > 1000 && frames > 1000, `both outcomes exercised (${errors} errors, ${frames} frames)`);
  });
});

describe("Mux.Cool encoder (what the gateway sends)", () => {
  test("Keep splits at 16 KiB by default, MetaLen 4 in every frame, one array", () => {
    const data = payload(40_000, 4);
    const wire = encodeMuxKeep(513, data);
    assert.equal(wire.length, data.length + 3 * 8);
    const frames = decodeAll(wire) as MuxFrame[];
    assert.deepEqual(frames.map((f) => f.data!.length), [
      MUX_DEFAULT_MAX_DATA,
      MUX_DEFAULT_MAX_DATA,
      40_000 - 2 * MUX_DEFAULT_MAX_DATA,
    ]);
    for (let o = 0, i = 0; i < 3; i++) {
      assert.equal(toHex(wire.subarray(o, o + 6)), "000402010201", "MetaLen 4, session 513, Keep, Data");
      o += 8 + frames[i]!.data!.length;
    }
    assert.equal(toHex(frames.map((f) => f.data!).reduce((a, b) => concat(a, b))), toHex(data));
  });

  test("Keep with a chosen maximum, one byte, the u16 maximum, and nothing", () => {
    assert.equal((decodeAll(encodeMuxKeep(1, payload(10), 3)) as MuxFrame[]).length, 4);
    assert.equal(toHex(encodeMuxKeep(1, Uint8Array.of(0xab))), "000400010201" + "0001ab");
    const max = encodeMuxKeep(1, payload(MUX_MAX_DATA), MUX_MAX_DATA);
    assert.equal(toHex(max.subarray(6, 8)), "ffff");
    assert.equal(encodeMuxKeep(1, new Uint8Array(0)).length, 0, "a zero DataLen is EOF to v2ray's stream reader");
  });

  test("encoder input no peer would accept throws a typed error", () => {
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof StreamError);
        return e.code;
      }
      return "accepted";
    };
    assert.equal(codeOf(() => encodeMuxKeep(65536, payload(1))), "mux_bad_session");
    assert.equal(codeOf(() => encodeMuxKeep(0, payload(1), 0)), "mux_data_too_large");
    assert.equal(codeOf(() => encodeMuxKeep(0, payload(1), 65536)), "mux_data_too_large");
    assert.equal(codeOf(() => encodeMuxFrame({ sessionId: 0, status: "keep", data: payload(65536) })), "mux_data_too_large");
    assert.equal(codeOf(() => encodeMuxFrame({ sessionId: 0, status: "new" })), "mux_bad_address");
    assert.equal(
      codeOf(() => encodeMuxFrame({ sessionId: 0, status: "new", network: "tcp", target: { host: "", port: 1 } })),
      "mux_bad_address",
    );
    assert.equal(
      codeOf(() => encodeMuxFrame({ sessionId: 0, status: "new", network: "tcp", target: { host: "a", port: 70000 } })),
      "mux_bad_address",
    );
    assert.equal(codeOf(() => encodeMuxFrame({ sessionId: -1, status: "end" })), "mux_bad_session");
  });
});

describe("looksLikeMuxCool", () => {
  test("the clients' New frames are recognised from their first 10-11 bytes", () => {
    const v2ray = encodeMuxFrame({
      sessionId: 1,
      status: "new",
      network: "tcp",
      target: { host: "127.0.0.1", port: 0 },
      data: payload(40),
    });
    const v6 = encodeMuxFrame({ sessionId: 1, status: "new", network: "udp", target: { host: "::1", port: 53 } });
    for (
      const [name, frame, decidedAt] of [
        ["mihomo", MIHOMO_NEW, 10],
        ["sing-box", singBoxNew(payload(30)), 11],
        ["v2ray", v2ray, 10],
        ["IPv6", v6, 10],
      ] as const
    ) {
      for (let n = 0; n < decidedAt; n++) assert.equal(looksLikeMuxCool(frame.subarray(0, n)), "need_more", `${name} ${n} bytes`);
      assert.equal(looksLikeMuxCool(frame.subarray(0, decidedAt)), "yes", name);
      assert.equal(looksLikeMuxCool(frame), "yes", name);
    }
  });

  test("changing any checked byte of mihomo's New makes it a no", () => {
    const bad: [number, number][] = [[0, 3], [1, 4], [4, 2], [5, 2], [5, 3], [6, 0], [6, 3], [9, 0], [9, 4], [1, 0x0b]];
    for (const [i, v] of bad) {
      const b = Uint8Array.from(MIHOMO_NEW);
      b[i] = v;
      assert.equal(looksLikeMuxCool(b), "no", `byte ${i} = ${v}`);
    }
    assert.equal(looksLikeMuxCool(hex("0201")), "no", "MetaLen 513");
    assert.equal(looksLikeMuxCool(hex("000f 0000 01 00 01 0000 03")), "no", "MetaLen 15 cannot hold an IPv6 address");
    assert.equal(looksLikeMuxCool(hex("0009 0000 01 00 01 0000 02 00")), "no", "empty domain");
    assert.equal(looksLikeMuxCool(hex("000a 0000 01 00 01 0000 02 02")), "no", "the domain overruns MetaLen");
  });

  test("random Shadowsocks salts are not Mux.Cool (expected false positives ≈ 2.2e-11 each)", () => {
    const salt = new Uint8Array(32);
    let yes = 0;
    let early = 0;
    for (let i = 0; i < 200_000; i++) {
      crypto.getRandomValues(salt);
      const r = looksLikeMuxCool(salt);
      if (r === "yes") yes++;
      if (r === "need_more") early++;
    }
    assert.equal(yes, 0);
    assert.equal(early, 0, "a 16-byte or longer salt always decides");
  });
});
