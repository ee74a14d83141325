import assert from "node:assert/strict";
import { test } from "node:test";
import { createGatewayMetrics } from "./metrics.ts";

test("every gateway has its own registry with the httvps_gateway_* metrics", async () => {
  const a = createGatewayMetrics();
  const b = createGatewayMetrics(); // a second instance must not clash with the first
  a.sessionsTotal.inc({ outcome: "ok" });
  a.bytesTotal.inc({ direction: "up" }, 5);
  a.framesRejectedTotal.inc({ code: "bad_frame" });
  a.handshakeSeconds.observe(0.01);
  a.upstreamDialSeconds.observe(0.002);
  a.sessionsActive.inc();
  a.streamsActive.inc();
  const { body, contentType } = await a.render();
  assert.match(contentType, /^text\/plain/);
  for (
    const line of [
      'httvps_gateway_sessions_total{outcome="ok"} 1',
      'httvps_gateway_bytes_total{direction="up"} 5',
      'httvps_gateway_frames_rejected_total{code="bad_frame"} 1',
      "httvps_gateway_handshake_seconds_count 1",
      "httvps_gateway_upstream_dial_seconds_count 1",
      "httvps_gateway_sessions_active 1",
      "httvps_gateway_streams_active 1",
    ]
  ) {
    assert.ok(body.includes(line), `missing: ${line}`);
  }
  assert.ok(!(await b.render()).body.includes('outcome="ok"'), "registries are separate");
});
