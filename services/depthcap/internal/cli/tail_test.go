package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/tail"
)

// TestTailCommand proves `depthcap tail` connects to NATS_URL, prints the
// envelopes of the subject as JSON lines (--raw: payload in base64, flags
// after the subject too), exits after --count, fails at once (exit 1) when
// no server listens, and exits 2 on usage errors.
func TestTailCommand(t *testing.T) {
	url := bustest.RunServer(t).ClientURL()
	t.Setenv("NATS_URL", url)
	nc := bustest.Connect(t, url)
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := run("tail", "md.binance.spot.diff.BTCUSDT", "--raw", "--count", "2")
		done <- result{code, out, errOut}
	}()
	env := envelope.Envelope{Market: md.Spot, Kind: md.Diff, Symbol: "BTCUSDT", ReceivedNs: 1, FirstID: 1, FinalID: 2,
		Has: envelope.HasFirst | envelope.HasFinal, Payload: []byte(`{"u":2}`)}
	var res result
	deadline := time.After(20 * time.Second)
wait:
	for {
		select {
		case res = <-done:
			break wait
		case <-deadline:
			t.Fatal("tail did not exit after 2 messages")
		case <-time.After(20 * time.Millisecond):
			// Publish until the tail has subscribed and printed two.
			if err := nc.Publish(md.Subject(md.Spot, md.Diff, "BTCUSDT"), env.AppendMarshal(nil)); err != nil {
				t.Fatal(err)
			}
		}
	}
	lines := strings.Split(strings.TrimSpace(res.out), "\n")
	if res.code != ExitOK || len(lines) != 2 {
		t.Fatalf("exit %d, %d lines\n%s\n%s", res.code, len(lines), res.out, res.err)
	}
	var l tail.Line
	if err := json.Unmarshal([]byte(lines[0]), &l); err != nil {
		t.Fatal(err)
	}
	if l.Kind != "diff" || *l.FinalUpdateID != 2 || l.PayloadBase64 != "eyJ1IjoyfQ==" || l.Payload != nil {
		t.Errorf("line %+v", l)
	}

	port := bustest.FreePort(t)
	t.Setenv("NATS_URL", fmt.Sprintf("nats://127.0.0.1:%d", port))
	start := time.Now()
	if code, _, errOut := run("tail", "md.>"); code != ExitFound || !strings.Contains(errOut, "connect") {
		t.Errorf("no server: exit %d, stderr %q", code, errOut)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("no server: took %v", d)
	}

	t.Setenv("NATS_URL", "")
	t.Setenv("NATS_EMBEDDED_LISTEN", "none")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"tail"}, "a subject is required"},
		{[]string{"tail", "a.b", "c.d"}, "one subject"},
		{[]string{"tail", "--count", "-1", "a.b"}, "must not be negative"},
		{[]string{"tail", "md.>"}, "NATS_URL"},
	} {
		if code, _, errOut := run(tc.args...); code != ExitUsage || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", tc.args, code, errOut, tc.msg)
		}
	}
}
