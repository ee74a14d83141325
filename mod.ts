// The httvps package as a library. The client API first: `connect(accessKey)` gives a Dialer
// whose dial({host, port}) returns a byte stream through the gateway, over one self-healing
// session; the SOCKS5 and HTTP proxies of `httvps connect` can be put in front of any Dialer.
export { connect, FINAL_AUTH_CODES, Tunnel, type ConnectOptions, type TunnelState, type TunnelStatus } from "./client/tunnel-dialer.ts";
export { ClientError, ClientSession, TunnelStream, type ClientSessionOptions } from "./client/session.ts";
export { DatagramStream } from "./client/datagram-stream.ts";
export type { GatewayTls } from "./client/gateway-socket.ts";
export { startSocks5, type Socks5Options } from "./client/socks5.ts";
export { startHttpProxy } from "./client/http-proxy.ts";
export type { ProxyOptions, ProxyServer } from "./client/proxy-server.ts";
export { pipeDuplex } from "./client/pipe.ts";

export { formatAccessKey, parseAccessKey, redactAccessKey, type AccessKey } from "./protocol/access-key.ts";
export { ERROR_CODES, type ErrorCode } from "./protocol/errors.ts";
export { PROTOCOL_VERSION, type Feature, type Frame } from "./protocol/frames.ts";
export { StreamError, type Dialer, type Duplex, type DuplexHandlers, type Target } from "./transport/stream.ts";
export { duplexFromSocket, tcpDialer } from "./transport/tcp.ts";
export type { PacketConn, PacketDialer, PacketHandlers } from "./transport/packet.ts";
export { udpDialer } from "./transport/udp.ts";
