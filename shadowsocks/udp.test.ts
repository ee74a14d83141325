import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { StreamError } from "../transport/stream.ts";
import { encodeAddress } from "../protocol/socks-address.ts";
import { cipherSpec, loadWasmProviders, PROVIDERS, usable } from "./ciphers.ts";
import { captures, readHexLines, toHex } from "./test-vectors.ts";
import { UdpCodec } from "./udp.ts";

await loadWasmProviders();

const udp = captures().filter((c) => c.transport === "udp");

describe("UDP captures from shadowsocks-libev", () => {
  test("there are UDP captures", () => assert.ok(udp.length >= 2));

  for (const cap of udp) {
    for (const dir of ["c2s", "s2c"] as const) {
      test(`${cap.name} ${dir}: decode, then re-encode with the captured salt`, () => {
        const packets = readHexLines(cap.files[dir]);
        const plains = readHexLines(cap.files[dir === "c2s" ? "c2sPlain" : "s2cPlain"]);
        assert.equal(packets.length, plains.length);
        assert.ok(packets.length >= 1);
        const spec = cipherSpec(cap.cipher);
        for (const provider of PROVIDERS.filter((p) => usable(p, spec))) {
          const codec = new UdpCodec(cap.cipher, cap.password, provider);
          packets.forEach((packet, i) => {
            const r = codec.decode(packet);
            assert.ok(!(r instanceof StreamError), provider.name);
            const addr = encodeAddress(r.target);
            assert.equal(toHex(addr) + toHex(r.payload), toHex(plains[i]!));
            if (dir === "c2s") assert.equal(toHex(addr), cap.target.socksAddrHex);
            const again = codec.encode(r.target, r.payload, packet.subarray(0, spec.saltLen));
            assert.equal(toHex(again), toHex(packet));
          });
        }
      });
    }

    test(`${cap.name}: tampered, short and wrong-key datagrams are typed errors`, () => {
      const packet = readHexLines(cap.files.c2s)[0]!;
      const codec = new UdpCodec(cap.cipher, cap.password);
      for (let i = 0; i < packet.length; i++) {
        const bad = packet.slice();
        bad[i]! ^= 0x80;
        const r = codec.decode(bad);
        assert.ok(r instanceof StreamError && r.code === "ss_auth_failed", `flip at ${i}`);
      }
      const short = codec.decode(packet.subarray(0, cipherSpec(cap.cipher).saltLen + 16));
      assert.ok(short instanceof StreamError && short.code === "ss_bad_packet");
      const wrong = new UdpCodec(cap.cipher, cap.password + "!").decode(packet);
      assert.ok(wrong instanceof StreamError && wrong.code === "ss_auth_failed");
    });
  }

  test("encode → decode round trip with fresh salts; an address-less payload is bad_address", () => {
    const codec = new UdpCodec("aes-128-gcm", "pw");
    const a = codec.encode({ host: "example.com", port: 53 }, new Uint8Array([1, 2, 3]));
    const b = codec.encode({ host: "example.com", port: 53 }, new Uint8Array([1, 2, 3]));
    assert.notEqual(toHex(a), toHex(b));
    const r = codec.decode(a);
    assert.ok(!(r instanceof StreamError));
    assert.deepEqual(r.target, { host: "example.com", port: 53 });
    assert.deepEqual([...r.payload], [1, 2, 3]);
    const garbage = codec.encode(new Uint8Array([9]), new Uint8Array(0));
    const g = codec.decode(garbage);
    assert.ok(g instanceof StreamError && g.code === "bad_address");
  });
});
