// Command binance-sim is depthcap's offline Binance: spot and USD-M
// websocket depth streams and REST endpoints, synthetic or replayed, with
// fault injection. Configuration is in the README.
package main

import (
	"context"

	binancesim "github.com/depthcap/depthcap/services/binance-sim"

	"github.com/depthcap/depthcap/pkg/svc"
)

func main() {
	var cfg binancesim.Config
	svc.Main("binance-sim", "127.0.0.1:9903", &cfg, run)
}

func run(ctx context.Context, cfg *binancesim.Config, env svc.Env) error {
	sim, err := binancesim.New(*cfg, binancesim.Options{Log: env.Log, Registerer: env.Registry})
	if err != nil {
		return err
	}
	env.Health.AddCheck("binance-sim", sim.Ready)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return sim.Shutdown(sctx)
}
