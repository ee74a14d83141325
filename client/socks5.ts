// A SOCKS5 server (RFC 1928) in front of any Dialer: CONNECT to IPv4, IPv6 or a domain name,
// no authentication or RFC 1929 username/password. A stream's failure code becomes the reply
// code the application sees. UDP ASSOCIATE is served by socks5-udp.ts when a PacketDialer is
// given; BIND (and UDP ASSOCIATE without one) is answered "command not supported".
// The parsers are pure functions so malformed input can be tested (and fuzzed) without sockets.
import { createHash, timingSafeEqual } from "node:crypto";
import type * as net from "node:net";
import { Code } from "../protocol/errors.ts";
import { ATYP_DOMAIN, ATYP_IPV4, ATYP_IPV6, decodeAddress } from "../protocol/socks-address.ts";
import { duplexFromSocket } from "../transport/tcp.ts";
import type { PacketDialer } from "../transport/packet.ts";
import { StreamError, type Target } from "../transport/stream.ts";
import { pipeDuplex } from "../transport/pipe.ts";
import { listenProxy, type ProxyOptions, type ProxyServer, readHandshake } from "./proxy-server.ts";
import { socksBoundReply, udpAssociate } from "./socks5-udp.ts";

export const SocksReply = {
  succeeded: 0x00,
  general_failure: 0x01,
  not_allowed: 0x02,
  network_unreachable: 0x03,
  host_unreachable: 0x04,
  connection_refused: 0x05,
  ttl_expired: 0x06,
  command_not_supported: 0x07,
  address_type_not_supported: 0x08,
} as const;

/** The reply code for a dial that failed with a stream error code. */
export function socksReplyFor(code: string): number {
  switch (code) {
    case Code.upstream_refused:
    case Code.upstream_reset:
      return SocksReply.connection_refused;
    case Code.upstream_unreachable:
      return SocksReply.host_unreachable;
    case Code.target_forbidden:
      return SocksReply.not_allowed;
    case Code.upstream_timeout:
      return SocksReply.ttl_expired;
    default:
      // unavailable, session_closed, too_many_streams, bad_target, …: the tunnel, not the target.
      return SocksReply.general_failure;
  }
}

const METHOD_NONE = 0x00;
const METHOD_USERPASS = 0x02;
const METHOD_REFUSED = 0xff;

export type Parsed<T> = { ok: true; value: T; used: number } | { ok: false; need: "more" } | { ok: false; error: string };

const more = { ok: false, need: "more" } as const;
const bad = (error: string) => ({ ok: false, error }) as const;

/** VER NMETHODS METHODS… */
export function parseGreeting(b: Uint8Array): Parsed<number[]> {
  if (b.length < 1) return more;
  if (b[0] !== 0x05) return bad(`not SOCKS5 (version byte ${b[0]})`);
  if (b.length < 2) return more;
  const n = b[1]!;
  if (n === 0) return bad("no authentication methods offered");
  if (b.length < 2 + n) return more;
  return { ok: true, value: [...b.subarray(2, 2 + n)], used: 2 + n };
}

/** RFC 1929: VER(1) ULEN UNAME PLEN PASSWD. */
export function parseUserPass(b: Uint8Array): Parsed<{ username: Uint8Array; password: Uint8Array }> {
  if (b.length < 1) return more;
  if (b[0] !== 0x01) return bad(`bad username/password version ${b[0]}`);
  if (b.length < 2) return more;
  const ulen = b[1]!;
  if (b.length < 3 + ulen) return more;
  const plen = b[2 + ulen]!;
  if (b.length < 3 + ulen + plen) return more;
  return {
    ok: true,
    value: { username: b.subarray(2, 2 + ulen), password: b.subarray(3 + ulen, 3 + ulen + plen) },
    used: 3 + ulen + plen,
  };
}

export type SocksRequest = { cmd: number; target: Target } | { cmd: number; reply: number; error: string };

/**
 * VER CMD RSV ATYP DST.ADDR DST.PORT. A complete request the server must refuse (unknown
 * address type, an unusable name) parses as `{reply, error}` so it can be answered properly.
 */
export function parseRequest(b: Uint8Array): Parsed<SocksRequest> {
  if (b.length < 4) return more;
  if (b[0] !== 0x05) return bad(`bad request version ${b[0]}`);
  const cmd = b[1]!;
  const atyp = b[3]!;
  const refuse = (reply: number, error: string, used: number) => ({ ok: true, value: { cmd, reply, error }, used }) as const;
  if (atyp !== ATYP_IPV4 && atyp !== ATYP_DOMAIN && atyp !== ATYP_IPV6) {
    return refuse(SocksReply.address_type_not_supported, `address type ${atyp}`, b.length);
  }
  const addr = decodeAddress(b, 3);
  if (addr instanceof StreamError) {
    return addr.code === "short_address" ? more : refuse(SocksReply.host_unreachable, addr.message, b.length);
  }
  const used = 3 + addr.length;
  // Host names are ASCII (IDNs arrive as punycode); anything else cannot be a valid target.
  if (addr.atyp === ATYP_DOMAIN && /[^\x21-\x7e]/.test(addr.host)) {
    return refuse(SocksReply.host_unreachable, "unusable domain name", used);
  }
  // Port 0 is what UDP ASSOCIATE sends when it does not know its port yet; only CONNECT needs one.
  if (addr.port === 0 && cmd === 0x01) return refuse(SocksReply.general_failure, "port 0", used);
  return { ok: true, value: { cmd, target: { host: addr.host, port: addr.port } }, used };
}

/** VER REP RSV ATYP=IPv4 0.0.0.0:0 — clients ignore the bound address of a CONNECT through a tunnel. */
export function socksReply(rep: number): Uint8Array {
  return Uint8Array.of(0x05, rep, 0x00, 0x01, 0, 0, 0, 0, 0, 0);
}

export interface Socks5Options extends ProxyOptions {
  /** Require RFC 1929 username/password. */
  auth?: { username: string; password: string };
  /** Carries UDP ASSOCIATE (the tunnel's UDP streams). */
  packetDialer?: PacketDialer;
  /** UDP streams per association. Default DEFAULT_MAX_DESTINATIONS. */
  maxUdpDestinations?: number;
}

const digest = (b: Uint8Array | string) => createHash("sha256").update(b).digest();

export function startSocks5(opts: Socks5Options): Promise<ProxyServer> {
  const timeoutMs = opts.handshakeTimeoutMs ?? 10_000;
  const log = opts.logger;
  // Compared as digests with timingSafeEqual: equal lengths, no early exit on the first wrong byte.
  const want = opts.auth ? { user: digest(opts.auth.username), pass: digest(opts.auth.password) } : undefined;

  return listenProxy(opts, "socks5", (socket: net.Socket) => {
    let phase: "greeting" | "auth" | "request" = "greeting";
    let request: { cmd: number; target: Target } | undefined;
    readHandshake(
      socket,
      timeoutMs,
      1024,
      (buf) => {
        if (phase === "greeting") {
          const g = parseGreeting(buf);
          if (!g.ok) return "need" in g ? 0 : (log?.debug("socks5: bad greeting", { error: g.error }), "fail");
          const methods = g.value;
          let method = METHOD_REFUSED;
          if (want) method = methods.includes(METHOD_USERPASS) ? METHOD_USERPASS : METHOD_REFUSED;
          else if (methods.includes(METHOD_NONE)) method = METHOD_NONE;
          // No credentials are configured, but a client that only offers them is let in too.
          else if (methods.includes(METHOD_USERPASS)) method = METHOD_USERPASS;
          socket.write(Uint8Array.of(0x05, method));
          if (method === METHOD_REFUSED) return "fail";
          phase = method === METHOD_USERPASS ? "auth" : "request";
          return g.used;
        }
        if (phase === "auth") {
          const a = parseUserPass(buf);
          if (!a.ok) return "need" in a ? 0 : (socket.write(Uint8Array.of(0x01, 0x01)), "fail");
          const good = !want ||
            (timingSafeEqual(digest(a.value.username), want.user) && timingSafeEqual(digest(a.value.password), want.pass));
          socket.write(Uint8Array.of(0x01, good ? 0x00 : 0x01));
          if (!good) {
            log?.info("socks5: wrong username or password", { remote: socket.remoteAddress });
            return "fail";
          }
          phase = "request";
          return a.used;
        }
        const r = parseRequest(buf);
        if (!r.ok) return "need" in r ? 0 : "fail";
        const req = r.value;
        if ("reply" in req) {
          socket.write(socksReply(req.reply));
          return "fail";
        }
        if (req.cmd !== 0x01 && !(req.cmd === 0x03 && opts.packetDialer)) {
          // BIND (2) is not carried by the tunnel.
          socket.write(socksReply(SocksReply.command_not_supported));
          return "fail";
        }
        request = { cmd: req.cmd, target: req.target };
        return { used: r.used, done: true };
      },
      (rest) => void (request!.cmd === 0x03 ? associate(socket, request!.target) : connectAndPipe(socket, request!.target, rest)),
    );
  });

  async function associate(socket: net.Socket, hint: Target): Promise<void> {
    try {
      const a = await udpAssociate(socket, hint, {
        packetDialer: opts.packetDialer!,
        logger: log,
        maxDestinations: opts.maxUdpDestinations,
      });
      if (!socket.destroyed) socket.write(socksBoundReply(SocksReply.succeeded, a.bound));
    } catch (e) {
      log?.debug("socks5: cannot start a UDP association", { error: e });
      if (!socket.destroyed) socket.end(socksReply(SocksReply.general_failure));
    }
  }

  async function connectAndPipe(socket: net.Socket, target: Target, rest: Uint8Array): Promise<void> {
    const abort = new AbortController();
    const onClose = () => abort.abort();
    socket.once("close", onClose);
    let stream;
    try {
      stream = await opts.dialer.dial(target, abort.signal);
    } catch (e) {
      socket.off("close", onClose);
      const code = e instanceof StreamError ? e.code : Code.internal;
      log?.debug("socks5: dial failed", { target: `${target.host}:${target.port}`, code });
      if (!socket.destroyed) {
        socket.end(socksReply(socksReplyFor(code)));
        setTimeout(() => socket.destroy(), 1000).unref?.();
      }
      return;
    }
    socket.off("close", onClose);
    if (socket.destroyed) {
      stream.close(new StreamError(Code.cancelled, "the SOCKS client went away while dialling"));
      return;
    }
    socket.write(socksReply(SocksReply.succeeded));
    if (rest.length > 0) stream.write(rest.slice());
    const r = await pipeDuplex(duplexFromSocket(socket), stream);
    if (r.remoteError) {
      log?.debug("socks5: stream ended abnormally", { target: `${target.host}:${target.port}`, code: r.remoteError.code });
    }
  }
}
