//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// simClient talks to one market port of binance-sim.
type simClient struct {
	market string // spot, futures
	base   string // http://127.0.0.1:port
}

type simConn struct {
	ID     int64     `json:"id"`
	Remote string    `json:"remote"`
	Path   string    `json:"path"`
	Opened time.Time `json:"opened"`
	Queued int       `json:"queued"`
}

type simFault struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Market   string    `json:"market"`
	Type     string    `json:"type"`
	Injected bool      `json:"injected"`
	Conn     int64     `json:"conn"`
	Symbol   string    `json:"symbol"`
	From     int64     `json:"from"`
	To       int64     `json:"to"`
	Events   int       `json:"events"`
	Client   string    `json:"client"`
}

type simSentEntry struct {
	Kind      string     `json:"kind"`
	Symbol    string     `json:"symbol"`
	Frames    int64      `json:"frames"`
	IDs       [][2]int64 `json:"ids"`
	Malformed [][2]int64 `json:"malformed"`
}

type simSent struct {
	Market    string         `json:"market"`
	Truncated bool           `json:"truncated"`
	Entries   []simSentEntry `json:"entries"`
}

func (c simClient) get(ctx context.Context, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("sim %s GET %s: %w", c.market, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("sim %s GET %s: %w", c.market, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sim %s GET %s: status %d: %s", c.market, path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("sim %s GET %s: %w", c.market, path, err)
	}
	return nil
}

// fault posts a fault request (POST /sim/fault) and returns how many
// targets it hit.
func (c simClient) fault(ctx context.Context, req map[string]any) (int, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/sim/fault", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	r.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return 0, fmt.Errorf("sim %s fault %s: %w", c.market, body, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("sim %s fault %s: status %d: %s", c.market, body, resp.StatusCode, b)
	}
	var out struct {
		Targets int `json:"targets"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, fmt.Errorf("sim %s fault %s: %w", c.market, body, err)
	}
	return out.Targets, nil
}

func (c simClient) conns(ctx context.Context) ([]simConn, error) {
	var out struct {
		Conns []simConn `json:"conns"`
	}
	err := c.get(ctx, "/sim/conns", &out)
	return out.Conns, err
}

func (c simClient) faults(ctx context.Context) ([]simFault, error) {
	var out struct {
		Faults []simFault `json:"faults"`
	}
	err := c.get(ctx, "/sim/faults", &out)
	return out.Faults, err
}

func (c simClient) sent(ctx context.Context) (simSent, error) {
	var out simSent
	err := c.get(ctx, "/sim/sent", &out)
	return out, err
}

// symbols reads the market's symbols from exchangeInfo, in the sim's
// order (busiest first).
func (c simClient) symbols(ctx context.Context) ([]string, error) {
	path := "/api/v3/exchangeInfo"
	if c.market == "futures" {
		path = "/fapi/v1/exchangeInfo"
	}
	var out struct {
		Symbols []struct {
			Symbol string `json:"symbol"`
		} `json:"symbols"`
	}
	if err := c.get(ctx, path, &out); err != nil {
		return nil, err
	}
	var syms []string
	for _, s := range out.Symbols {
		syms = append(syms, s.Symbol)
	}
	return syms, nil
}
