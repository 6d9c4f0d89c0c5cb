module github.com/depthcap/depthcap/services/binance-sim

go 1.26.0

require github.com/depthcap/depthcap/pkg v0.0.0

require (
	github.com/coder/websocket v1.8.15 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	go.uber.org/zap v1.28.0 // indirect
)

replace github.com/depthcap/depthcap/pkg => ../../pkg
