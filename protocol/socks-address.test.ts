import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { captures, fromHex, toHex } from "../shadowsocks/test-vectors.ts";
import { StreamError } from "./errors.ts";
import { decodeAddress, encodeAddress } from "./socks-address.ts";

const isCode = (code: string) => (e: unknown) => e instanceof StreamError && e.code === code;

describe("address codec", () => {
  test("the capture targets encode exactly as ss-local sent them", () => {
    for (const c of captures()) assert.equal(toHex(encodeAddress(c.target)), c.target.socksAddrHex, c.name);
  });

  test("IPv4, domain and IPv6 (all text forms) encode and decode", () => {
    const cases: [string, string, string][] = [
      ["127.0.0.1", "017f000001", "127.0.0.1"],
      ["0.0.0.0", "0100000000", "0.0.0.0"],
      ["localhost", "03096c6f63616c686f7374", "localhost"],
      ["::1", "0400000000000000000000000000000001", "::1"],
      ["::", "0400000000000000000000000000000000", "::"],
      ["2001:db8::1", "0420010db8000000000000000000000001", "2001:db8::1"],
      ["2001:DB8:0:0:0:0:0:1", "0420010db8000000000000000000000001", "2001:db8::1"],
      ["fe80::1:0:0:2", "04fe800000000000000001000000000002", "fe80::1:0:0:2"],
      ["::ffff:1.2.3.4", "0400000000000000000000ffff01020304", "::ffff:102:304"],
      ["1:0:0:2:0:0:0:3", "0400010000000000020000000000000003", "1:0:0:2::3"],
      ["1:2:3:4:5:6:7:8", "0400010002000300040005000600070008", "1:2:3:4:5:6:7:8"],
      ["1:2:3:4:5:6:7::", "0400010002000300040005000600070000", "1:2:3:4:5:6:7:0"],
      ["01.2.3.4", "030830312e322e332e34", "01.2.3.4"], // leading zero: a name, not an address
    ];
    for (const [host, hex, back] of cases) {
      const wire = encodeAddress({ host, port: 443 });
      assert.equal(toHex(wire), hex + "01bb", host);
      const d = decodeAddress(wire);
      assert.ok(!(d instanceof StreamError));
      assert.deepEqual({ host: d.host, port: d.port, length: d.length }, { host: back, port: 443, length: wire.length }, host);
    }
  });

  test("decodes at an offset and reports the length it used", () => {
    const bytes = fromHex("ffff" + "03096c6f63616c686f7374e4e1" + "474554");
    const d = decodeAddress(bytes, 2);
    assert.ok(!(d instanceof StreamError));
    assert.deepEqual({ ...d }, { atyp: 3, host: "localhost", port: 58593, length: 13 });
  });

  test("bad inputs are typed errors", () => {
    assert.throws(() => encodeAddress({ host: "", port: 80 }), isCode("bad_address"));
    assert.throws(() => encodeAddress({ host: "a".repeat(256), port: 80 }), isCode("bad_address"));
    assert.ok(encodeAddress({ host: "a".repeat(255), port: 80 }).length === 1 + 1 + 255 + 2);
    assert.throws(() => encodeAddress({ host: "example.com", port: 65536 }), isCode("bad_address"));
    assert.throws(() => encodeAddress({ host: "example.com", port: -1 }), isCode("bad_address"));
    assert.throws(() => encodeAddress({ host: "example.com", port: 1.5 }), isCode("bad_address"));
    for (const bad of ["1::2::3", "12345::", ":::", "1:2:3:4:5:6:7:8:9", "::g", "fe80::1%eth0", "[::1]"]) {
      assert.throws(() => encodeAddress({ host: bad, port: 80 }), isCode("bad_address"), bad);
    }
    const codes = (hex: string) => {
      const r = decodeAddress(fromHex(hex));
      return r instanceof StreamError ? r.code : "ok";
    };
    assert.equal(codes(""), "short_address");
    assert.equal(codes("01"), "short_address");
    assert.equal(codes("017f00000100"), "short_address");
    assert.equal(codes("03"), "short_address");
    assert.equal(codes("0305616263"), "short_address");
    assert.equal(codes("0300"), "bad_address");
    assert.equal(codes("02"), "bad_address");
    assert.equal(codes("0302ffff0050"), "bad_address");
    assert.equal(codes("04" + "00".repeat(17)), "short_address");
  });
});
