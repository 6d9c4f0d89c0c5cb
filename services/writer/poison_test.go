package writer_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/core"
)

// TestPoisonInput proves that bad input is quarantined without stalling
// the writer: a NaN price, a negative size, garbage bytes that are no
// envelope and an envelope whose ids disagree with its payload each land
// in the DLQ stream with the reason, original subject and stream sequence
// in headers; they are counted by reason; every other event is written.
func TestPoisonInput(t *testing.T) {
	envs := dataset(t, 1, "spot_2021-10-12_4sym.rec.gz")
	poison := func(i int, from, to string) envelope.Envelope {
		e := envs[i]
		e.Payload = bytes.Replace(bytes.Clone(e.Payload), []byte(from), []byte(to), 1)
		return e
	}
	var bad []envelope.Envelope
	bad = append(bad, poison(5, `[["`, `[["NaN","1"],["`))      // NaN price
	bad = append(bad, poison(6, `"a":[`, `"a":[["1.5","-5"],`)) // negative size
	mismatch := envs[7]
	mismatch.FinalID++ // envelope id disagrees with the payload
	bad = append(bad, mismatch)

	h := newHarness(t)
	h.publish(envs[:50], false)
	h.publish(bad, true)
	h.publishRaw(md.Subject(md.Spot, md.Diff, "NKNUSDT"), []byte("\xff\xffnot an envelope"))
	h.publish(envs[50:], false)
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	cfg := testConfig(dir, h.url)
	w := h.newWriter(cfg, reg)
	ctx, cancel := contextTimeout(time.Minute)
	defer cancel()
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := readAll(t, dir)
	n := 0
	for _, rs := range got {
		n += len(rs)
	}
	if n != len(envs) {
		t.Errorf("%d rows, want %d (every good event)", n, len(envs))
	}
	dlq := bustest.StreamMessages(t, h.js, md.StreamDLQ, "")
	if len(dlq) != 4 {
		t.Fatalf("%d DLQ messages, want 4", len(dlq))
	}
	reasons := map[string]int{}
	for _, m := range dlq {
		hd := m.Headers()
		reasons[hd.Get(core.HdrReason)]++
		if hd.Get(core.HdrSeq) == "" || !strings.HasPrefix(hd.Get(core.HdrSubject), "md.binance.spot.diff.") {
			t.Errorf("DLQ headers %v", hd)
		}
		if !strings.HasPrefix(m.Subject(), "dlq.writer.") {
			t.Errorf("DLQ subject %s", m.Subject())
		}
	}
	if reasons[core.ReasonEnvelope] != 1 || reasons[core.ReasonMismatch] != 1 || reasons[core.ReasonImpossible]+reasons[core.ReasonMalformed] != 2 {
		t.Errorf("DLQ reasons %v", reasons)
	}
	if v := testutil.ToFloat64(counterVec(t, reg, "depthcap_writer_dlq_total", "envelope")); v != 1 {
		t.Errorf("dlq_total{reason=envelope} = %v", v)
	}
}
