// Command rest-snapshotter takes full-depth REST order-book snapshots of
// Binance spot and USD-M futures within the exchange's request-weight
// budget and publishes them to NATS JetStream. Configuration is
// environment variables; see the service README.
package main

import (
	"github.com/depthcap/depthcap/pkg/svc"
	snapshotter "github.com/depthcap/depthcap/services/rest-snapshotter"
)

func main() {
	var cfg snapshotter.Config
	svc.Main(snapshotter.Service, "127.0.0.1:9103", &cfg, snapshotter.Run)
}
