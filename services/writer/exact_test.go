package writer_test

import (
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer"
	"github.com/depthcap/depthcap/services/writer/internal/testrec"
)

// dataset builds envelopes (pkg/frames, as ingest publishes them) from
// the named recordings (default: every real recording and the real
// partial samples), repeated reps times under renamed symbols
// (<SYMBOL>_R<k>, the payload's "s" renamed too) so that ids stay
// consistent per symbol, and sorted by receive time.
func dataset(t testing.TB, reps int, names ...string) []envelope.Envelope {
	t.Helper()
	if len(names) == 0 {
		return datasetWith(t, reps, true, testrec.Recordings()...)
	}
	return datasetWith(t, reps, false, names...)
}

// datasetWith is dataset with the partial samples (received one per
// second from 2022-05-29 12:00 UTC) optional.
func datasetWith(t testing.TB, reps int, partials bool, names ...string) []envelope.Envelope {
	t.Helper()
	envs, err := testrec.Envelopes(names, reps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if partials {
		ps, err := testrec.Partials()
		if err != nil {
			t.Fatal(err)
		}
		base := time.Date(2022, 5, 29, 12, 0, 0, 0, time.UTC).UnixNano()
		for k := 0; k < reps; k++ {
			for i := range ps {
				e := ps[i].Env
				e.ReceivedNs = base + int64(i)*int64(time.Second)
				if k > 0 {
					e = testrec.Renamed(e, e.Symbol+"_R"+strconv.Itoa(k))
				}
				envs = append(envs, e)
			}
		}
		sort.SliceStable(envs, func(i, j int) bool { return envs[i].ReceivedNs < envs[j].ReceivedNs })
	}
	return envs
}

type streamID struct {
	m   md.Market
	k   md.Kind
	sym string
}

// streamOf is the stream of a sealed file's relative path.
func streamOf(t testing.TB, rel string) streamID {
	t.Helper()
	parts := strings.Split(rel, "/")
	m, err := md.ParseMarket(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	k, ok := md.KindFromDir(parts[1])
	if !ok {
		t.Fatalf("kind dir %s", parts[1])
	}
	return streamID{m, k, parts[2]}
}

// readAll reads every sealed file under dir, grouped by stream, files in
// name order (periods, then supplements).
func readAll(t testing.TB, dir string) (map[streamID][]Row, map[string]map[string]string) {
	t.Helper()
	got := map[streamID][]Row{}
	metas := map[string]map[string]string{}
	for _, rel := range parquetFiles(t, dir) {
		rs, kv := readRows(t, filepath.Join(dir, rel))
		id := streamOf(t, rel)
		got[id] = append(got[id], rs...)
		metas[rel] = kv
	}
	return got, metas
}

// checkExactRows publishes envs through a real JetStream server, seals
// them with Finish under cfg (DataDir and URL are set here) and proves
// that every envelope became exactly one row with exact values: every
// row is compared with an independent decode (encoding/json +
// strconv.ParseFloat) of its payload; no row is missing, none is extra,
// order is stream order per stream; the metadata is complete. It returns
// the writer's metrics registry.
func checkExactRows(t *testing.T, envs []envelope.Envelope, cfg writer.Config) *prometheus.Registry {
	t.Helper()
	h := newHarness(t)
	h.publish(envs, false)
	cfg.DataDir, cfg.URL = t.TempDir(), h.url
	reg := prometheus.NewRegistry()
	h.finishWith(cfg, reg)

	want := map[streamID][]Row{}
	for i := range envs {
		e := &envs[i]
		id := streamID{e.Market, e.Kind, e.Symbol}
		want[id] = append(want[id], expectedRow(t, e))
	}
	got, metas := readAll(t, cfg.DataDir)
	compareStreams(t, got, want, envs)
	for rel, kv := range metas {
		if kv["depthcap.schema_version"] != "1" || kv["depthcap.rows"] == "" || kv["depthcap.gap_count"] != "0" {
			t.Errorf("%s: metadata %v", rel, kv)
		}
	}
	t.Logf("%d envelopes, %d files", len(envs), len(metas))
	return reg
}

// TestExactRows is the race-enabled scale of TestAcceptanceExactRows:
// the small recordings (every market and kind), the real partial
// samples and the first 2,000 frames of each ETHUSDT recording, with a
// memory limit and part size small enough that memory-triggered
// checkpoints and part files happen (asserted), so rows are sealed from
// parts, checkpoint chunks and raw rows.
func TestExactRows(t *testing.T) {
	envs := datasetWith(t, 1, true, testrec.SmallRecordings()...)
	for _, name := range testrec.LargeRecordings() {
		large := dataset(t, 1, name)
		envs = append(envs, large[:2000]...)
	}
	sort.SliceStable(envs, func(i, j int) bool { return envs[i].ReceivedNs < envs[j].ReceivedNs })
	cfg := testConfig("", "")
	cfg.MemoryLimit, cfg.PartBytes = 1<<20, 64<<10
	reg := checkExactRows(t, envs, cfg)
	if v := testutil.ToFloat64(counterVec(t, reg, "depthcap_writer_checkpoints_total", "memory")); v == 0 {
		t.Error("no memory-triggered checkpoint")
	}
	if v := metricValue(t, reg, "depthcap_writer_parts_total"); v == 0 {
		t.Error("no part file written")
	}
}
