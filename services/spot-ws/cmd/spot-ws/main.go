// Command spot-ws captures Binance spot depth streams into JetStream.
// Configuration: environment variables (services/spot-ws/README.md).
package main

import (
	"github.com/depthcap/depthcap/pkg/svc"
	spotws "github.com/depthcap/depthcap/services/spot-ws"
)

func main() {
	var cfg spotws.Config
	svc.Main("spot-ws", "127.0.0.1:9101", &cfg, spotws.Run)
}
