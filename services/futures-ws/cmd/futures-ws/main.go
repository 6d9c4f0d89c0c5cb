// Command futures-ws captures Binance USD-M futures depth streams into
// JetStream. Configuration: environment variables (services/spot-ws/README.md,
// which documents both ingest services).
package main

import (
	"github.com/depthcap/depthcap/pkg/svc"
	futuresws "github.com/depthcap/depthcap/services/futures-ws"
)

func main() {
	var cfg futuresws.Config
	svc.Main("futures-ws", "127.0.0.1:9102", &cfg, futuresws.Run)
}
