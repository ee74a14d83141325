// The httvps package as a library. The client API first: `connect(accessKey)` gives a Dialer
// whose dial({host, port}) returns a byte stream through the gateway, over one self-healing
// session; the SOCKS5 and HTTP proxies of `httvps connect` can be put in front of any Dialer.
export {
  connect,
  type ConnectOptions,
  FINAL_AUTH_CODES,
  Tunnel,
  type TunnelState,
  type TunnelStatus,
} from "./client/tunnel-dialer.ts";
export { ClientError, ClientSession, type ClientSessionOptions } from "./client/session.ts";
export { TunnelStream } from "./client/tunnel-stream.ts";
export { DatagramStream } from "./client/datagram-stream.ts";
export type { GatewayTls } from "./client/gateway-socket.ts";
export { type Socks5Options, startSocks5 } from "./client/socks5.ts";
export { startHttpProxy } from "./client/http-proxy.ts";
export type { ProxyOptions, ProxyServer } from "./client/proxy-server.ts";
export { pipeDuplex } from "./transport/pipe.ts";

export { type AccessKey, formatAccessKey, parseAccessKey, redactAccessKey } from "./protocol/access-key.ts";
export { ERROR_CODES, type ErrorCode } from "./protocol/errors.ts";
export { type Feature, type Frame, PROTOCOL_VERSION } from "./protocol/frames.ts";
export { type Dialer, type Duplex, type DuplexHandlers, StreamError, type Target } from "./transport/stream.ts";
export { duplexFromSocket, tcpDialer } from "./transport/tcp.ts";
export type { PacketConn, PacketDialer, PacketHandlers } from "./transport/packet.ts";
export { udpDialer } from "./transport/udp.ts";
