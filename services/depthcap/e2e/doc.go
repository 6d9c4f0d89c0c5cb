// Package e2e holds depthcap's end-to-end test (build tag e2e, `make e2e`):
// every service runs as its own OS process against binance-sim, a
// nats-server process and a versitygw S3 server, through websocket drops,
// exchange-side sequence skips, writer kill -9, a NATS restart and an S3
// outage; the test then proves from the uploaded objects that every event
// the simulator sent is stored exactly once and that the only gaps are the
// injected ones. See docs/OPERATIONS.md, "End-to-end test".
package e2e
