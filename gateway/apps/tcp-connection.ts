// One WebSocket on a device's `/<P>/tcp` path (docs/08): which of the apps' layerings it carries,
// told from its first bytes, and each stream in it joined to the app session's upstream.
//
//   raw      a Shadowsocks stream whose first length block authenticates under the device key:
//            Outline's websocket-stream, v2ray-plugin mux=0, v2ray/Xray ws without mux;
//            target `v1.mux.cool` → core layering: the plaintext is Mux.Cool whose sub-sessions
//            name the real TCP/UDP targets (v2ray/Xray with mux on)
//   mux      else a Mux.Cool New frame (looksLikeMuxCool): plugin layering (v2ray-plugin mux≠0,
//            mihomo, sing-box), every sub-session a Shadowsocks stream, its New target ignored
//   probe    anything else, and any bad input later (a chunk that fails, a replayed salt, our
//            own salt sent back, a bad address, bad framing): read and discard until the probe
//            deadline, then close, never a word (Outline's absorbProbe). The deadline is
//            GATEWAY_APP_PROBE_TIMEOUT after the accept, as Outline's read deadline until the
//            target is read; for bad input after the first target, that long after it.
// A connection that has not named a target by then is closed the same way.
import type { Logger } from "../../logging/logger.ts";
import { Code } from "../../protocol/errors.ts";
import { isMuxCoolTarget, looksLikeMuxCool } from "../../protocol/mux-cool.ts";
import type { ReplayCache } from "../../shadowsocks/replay-cache.ts";
import { pipeDuplex } from "../../transport/pipe.ts";
import { type Duplex, StreamError, type Target } from "../../transport/stream.ts";
import type { Upstream } from "../upstream/upstream.ts";
import type { DeviceKey } from "./device-key.ts";
import { type Meter, metered } from "./metered.ts";
import { MuxServer, type MuxSub } from "./mux-server.ts";
import { SsServerStream } from "./ss-server-stream.ts";
import { serveMuxUdp } from "./mux-udp.ts";
import { V2RAY_END_DELAY_MS, type WsDuplex } from "./ws-duplex.ts";

/** How an app speaks on the TCP path (the metrics' label, docs/08); `udp` is the UDP path's. */
export type Flavour = "outline" | "v2ray-plugin" | "mux" | "v2ray-core-mux" | "udp";

export interface TcpConnectionDeps {
  ws: WsDuplex;
  key: DeviceKey;
  upstream: Upstream;
  replay: ReplayCache;
  probeTimeoutMs: number;
  dialTimeoutMs: number;
  udpIdleTimeoutMs: number;
  maxSubSessions: number;
  /** The upgrade's User-Agent: the Outline Client says "Outline (…)". */
  userAgent: string | null;
  log: Logger;
  /** The layering is known (once per connection). */
  flavour(f: Flavour): void;
  /** Payload bytes to and from the targets. */
  meter: Meter;
  /** Bad input, absorbed (its code, for the metric). */
  probe(code: string): void;
}

export class TcpConnection {
  private readonly acceptedAt = performance.now();
  private readonly deadline: ReturnType<typeof setTimeout>;
  private targeted = false;
  private absorbed = false;
  private closed = false;
  /** Dials in flight, aborted when the connection goes. */
  private readonly dials = new Set<AbortController>();

  constructor(private readonly d: TcpConnectionDeps) {
    const ws = d.ws;
    ws.onEarly = () => this.sniff();
    ws.onBadInput = (e) => this.bad(e);
    this.deadline = setTimeout(() => {
      if (!this.targeted) this.bad(new StreamError("app_no_target", "no target within the probe timeout"));
    }, d.probeTimeoutMs);
    this.sniff(); // early data may already decide
  }

  /** The socket closed: stop the timers and the dials. */
  closedByApp(): void {
    this.closed = true;
    clearTimeout(this.deadline);
    for (const c of this.dials) c.abort();
    this.dials.clear();
  }

  private sniff(): void {
    const { ws, key } = this.d;
    const first = ws.peek(key.firstBlockBytes);
    if (!first || this.absorbed) return;
    ws.onEarly = undefined;
    if (key.firstBlockAuthenticates(first)) return this.raw();
    if (looksLikeMuxCool(first) === "yes") return this.plugin();
    this.bad(new StreamError("ss_auth_failed", "the first bytes are neither a stream under the device key nor Mux.Cool"));
  }

  private raw(): void {
    const ss: SsServerStream = new SsServerStream(this.d.ws, this.d.key, {
      salt: (salt) => this.checkSalt(salt),
      bad: (e) => this.bad(e),
      target: (t) => {
        this.gotTarget();
        if (!isMuxCoolTarget(t)) {
          const outline = this.d.userAgent?.startsWith("Outline") ?? false;
          this.d.flavour(outline ? "outline" : "v2ray-plugin");
          if (!outline) this.d.ws.endDelayMs = V2RAY_END_DELAY_MS;
          return this.relay(ss, t);
        }
        this.d.flavour("v2ray-core-mux");
        new MuxServer(ss, { session: (sub) => this.coreSession(sub), bad: (e) => this.bad(e) }, this.d.maxSubSessions);
      },
    });
    ss.listen();
  }

  private plugin(): void {
    this.d.flavour("mux");
    new MuxServer(this.d.ws, {
      bad: (e) => this.bad(e),
      session: (sub) => {
        const ss: SsServerStream = new SsServerStream(sub, this.d.key, {
          salt: (salt) => this.checkSalt(salt),
          bad: (e) => this.bad(e),
          target: (t) => {
            this.gotTarget();
            // Only the core layering may nest Mux.Cool; inside the plugin's it is nothing we serve.
            if (isMuxCoolTarget(t)) return ss.close(new StreamError(Code.bad_target, "Mux.Cool inside Mux.Cool"));
            this.relay(ss, t);
          },
        });
        ss.listen();
      },
    }, this.d.maxSubSessions);
  }

  /** A sub-session of the core layering: its New frame names the real target. */
  private coreSession(sub: MuxSub): void {
    if (sub.network === "udp") {
      return serveMuxUdp(sub, this.d.upstream, { idleTimeoutMs: this.d.udpIdleTimeoutMs, meter: this.d.meter, log: this.d.log });
    }
    this.relay(sub, sub.target);
  }

  /** `salt` refused: one of our own (a reflection) or one seen before (a replay). */
  private checkSalt(salt: Uint8Array): string | undefined {
    if (this.d.key.isServerSalt(salt)) return "ss_replay_server";
    if (!this.d.replay.add(this.d.key.keyId, salt)) return "ss_replay";
    return undefined;
  }

  private gotTarget(): void {
    if (this.targeted) return;
    this.targeted = true;
    clearTimeout(this.deadline);
  }

  /** Dial `target` through the session's upstream and join the two; a dial error closes the app's stream at once. */
  private relay(app: Duplex, target: Target): void {
    if (this.closed || this.absorbed) return app.close();
    const up = this.d.upstream;
    const ctrl = new AbortController();
    this.dials.add(ctrl);
    const ms = up.dialTimeoutMs ?? this.d.dialTimeoutMs;
    const timer = setTimeout(() => ctrl.abort(), ms);
    const t0 = performance.now();
    let dialing: Promise<Duplex>;
    try {
      dialing = up.dialer.dial(target, ctrl.signal);
    } catch (e) {
      dialing = Promise.reject(e);
    }
    dialing.then(
      (duplex) => {
        clearTimeout(timer);
        this.dials.delete(ctrl);
        if (ctrl.signal.aborted || this.absorbed) {
          duplex.close();
          return app.close();
        }
        this.d.log.debug("app stream open", { dial_ms: Math.round(performance.now() - t0) });
        void pipeDuplex(app, metered(duplex, this.d.meter));
      },
      (e: unknown) => {
        clearTimeout(timer);
        this.dials.delete(ctrl);
        const code = e instanceof StreamError ? e.code : Code.upstream_unreachable;
        this.d.log.debug("app dial failed", { code: ctrl.signal.aborted && !this.closed ? Code.upstream_timeout : code });
        app.close(new StreamError(code, "could not reach the target"));
      },
    );
  }

  private bad(err: StreamError): void {
    if (this.absorbed || this.closed) return;
    this.absorbed = true;
    clearTimeout(this.deadline);
    this.d.probe(err.code);
    this.d.log.debug("app connection absorbed", { code: err.code });
    const now = performance.now();
    const from = this.targeted ? now : this.acceptedAt;
    this.d.ws.absorb(from + this.d.probeTimeoutMs);
    for (const c of this.dials) c.abort();
  }
}
