// The apps' WebSocket routes at the gateway (docs/08, protocol/app-links/identity.ts appPaths):
// an upgrade to `/<P>/tcp` or `/<P>/udp` is answered with a 101 only when `<P>` names a device
// that may connect; everything else, and any failure on the way, is the decoy site, as an
// unknown path is. The decision is made before the 101, so a prober learns nothing from it.
// Early data in Sec-WebSocket-Protocol (mihomo's and Xray's `?ed=`) comes before the first
// message, and the same header value goes back in the 101, as those clients expect.
import type { Logger } from "../../logging/logger.ts";
import { APP_PATH_PATTERN } from "../../protocol/control-plane.ts";
import { decodeEarlyData } from "../../protocol/ws-early-data.ts";
import type { DecideUpgrade, SessionHandler, SessionSocket } from "../../runtime/types.ts";
import { StreamError } from "../../transport/stream.ts";
import type { GatewayMetrics } from "../metrics.ts";
import { type AppConnection, type AppSession, WS_CLOSE_GOING_AWAY } from "./app-session.ts";
import type { AppSessions } from "./app-sessions.ts";
import type { Meter } from "./metered.ts";
import { MUX_MAX_SESSIONS } from "./mux-server.ts";
import { type Flavour, TcpConnection } from "./tcp-connection.ts";
import { UdpAssociation } from "./udp-association.ts";
import { WsDuplex } from "./ws-duplex.ts";

export interface AppRoutesOptions {
  sessions: AppSessions;
  metrics?: GatewayMetrics;
  log: Logger;
  probeTimeoutMs: number;
  dialTimeoutMs: number;
  udpIdleTimeoutMs: number;
  /** The adapters' WS_HIGH_WATER: above it a stream's upstream pauses, a datagram for the app is dropped. */
  highWater: number;
  /** Whether new connections are taken (false once the gateway drains or stops). */
  accepting(): boolean;
}

/** The DecideUpgrade for serveGateway: the apps' paths, or undefined (the decoy). */
export function appUpgrade(opts: AppRoutesOptions): DecideUpgrade {
  return async (path, headers, remoteAddress) => {
    const m = APP_PATH_PATTERN.exec(path);
    if (!m || (m[2] !== "/tcp" && m[2] !== "/udp") || !opts.accepting()) return undefined;
    const protocolHeader = headers.get("sec-websocket-protocol");
    const early = decodeEarlyData(protocolHeader);
    if (early instanceof StreamError) return undefined;
    const userAgent = headers.get("user-agent");
    const session = await opts.sessions.join(`/${m[1]}`, remoteAddress, userAgent ?? undefined);
    const claim = session?.reserve();
    if (!session || !claim || !opts.accepting()) return undefined;
    return {
      protocol: early ? protocolHeader! : undefined,
      accept: (socket) => {
        if (!claim()) {
          // The session closed between the answer and the open (access ended, the gateway stops).
          setTimeout(() => socket.close(WS_CLOSE_GOING_AWAY, ""), 0);
          return { message() {}, drain() {}, close() {} };
        }
        return m[2] === "/tcp" ? tcp(opts, session, socket, early, userAgent) : udp(opts, session, socket);
      },
    };
  };
}

/** Connection counts by flavour once the flavour is known. */
function tracker(opts: AppRoutesOptions) {
  let flavour: Flavour | undefined;
  return {
    set(f: Flavour) {
      if (flavour) return;
      flavour = f;
      opts.metrics?.appConnectionsTotal.inc({ flavour: f });
      opts.metrics?.appConnectionsActive.inc({ flavour: f });
    },
    get flavour() {
      return flavour;
    },
    done() {
      if (flavour) opts.metrics?.appConnectionsActive.dec({ flavour });
    },
  };
}

function tcp(
  opts: AppRoutesOptions,
  session: AppSession,
  socket: SessionSocket,
  early: Uint8Array | undefined,
  userAgent: string | null,
): SessionHandler {
  const ws = new WsDuplex(socket, opts.highWater, early);
  const seen = tracker(opts);
  let meter: Meter | undefined;
  const conn: AppConnection = { terminate: (code) => socket.close(code, "") };
  session.attach(conn);
  const c = new TcpConnection({
    ws,
    key: session.key,
    upstream: session.upstream,
    replay: opts.sessions.replay,
    probeTimeoutMs: opts.probeTimeoutMs,
    dialTimeoutMs: opts.dialTimeoutMs,
    udpIdleTimeoutMs: opts.udpIdleTimeoutMs,
    maxSubSessions: MUX_MAX_SESSIONS,
    userAgent,
    log: session.log,
    flavour: (f) => {
      seen.set(f);
      meter = session.meter(f);
    },
    meter: { bytes: (direction, n) => meter?.bytes(direction, n) },
    probe: (code) => opts.metrics?.appProbesTotal.inc({ code }),
  });
  ws.onClosed = () => {
    c.closedByApp();
    seen.done();
    session.detach(conn);
  };
  return ws.handler();
}

function udp(opts: AppRoutesOptions, session: AppSession, socket: SessionSocket): SessionHandler {
  const seen = tracker(opts);
  const meter = session.meter("udp");
  const a: UdpAssociation = new UdpAssociation({
    socket,
    key: session.key,
    upstream: session.upstream,
    idleTimeoutMs: opts.udpIdleTimeoutMs,
    probeTimeoutMs: opts.probeTimeoutMs,
    highWater: opts.highWater,
    log: session.log,
    meter,
    opened: () => seen.set("udp"),
    probe: (code) => opts.metrics?.appProbesTotal.inc({ code }),
    dropped: (n) => n > 0 && opts.metrics?.udpDatagramsDroppedTotal.inc(n),
  });
  const conn: AppConnection = { terminate: (code) => a.terminate(code) };
  session.attach(conn);
  const h = a.handler();
  return {
    message: (msg) => h.message(msg),
    drain: () => h.drain(),
    close: (code, reason) => {
      h.close(code, reason);
      seen.done();
      session.detach(conn);
    },
  };
}
