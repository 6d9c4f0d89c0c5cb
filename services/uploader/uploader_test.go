package uploader_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	depthcapv1 "github.com/depthcap/depthcap/pkg/gen/depthcap/v1"
	"github.com/depthcap/depthcap/pkg/manifest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/uploader"
	"github.com/depthcap/depthcap/services/uploader/internal/s3test"
)

// Proves: every file and sidecar announced by FileSealed messages ends up
// under S3_PREFIX with exactly the local bytes, including a file larger
// than UPLOAD_PART_SIZE (multipart); the store holds a FULL_OBJECT
// checksum equal to the local file's (for both supported algorithms);
// messages are acked only after verification; and temp names,
// dot-directories and nats/ are never uploaded.
func TestUploadAndVerify(t *testing.T) {
	for _, algo := range []struct {
		name string
		ct   minio.ChecksumType
	}{{"CRC64NVME", minio.ChecksumCRC64NVME}, {"CRC32C", minio.ChecksumCRC32C}} {
		t.Run(algo.name, func(t *testing.T) {
			h := newHarness(t)
			const big = "spot/diff_orderbooks/BTCUSDT/2026-11-21.parquet"
			const gaps = "spot/diff_orderbooks/BTCUSDT/2026-11-21.gaps.json"
			sizes := map[string]int{
				big:  12<<20 + 12345, // three 5MiB parts
				gaps: 321,
				"spot/partial_orderbooks/ETHUSDT/2026-11-21.parquet":  1 << 20,
				"futures/orderbooks/BTCUSDT/2026-11-21.parquet":       70_000,
				"futures/diff_orderbooks/币安人生USDT/2026-11-21.parquet": 4096,
			}
			var total int
			seed := uint64(1)
			for rel, n := range sizes {
				if rel == gaps {
					continue
				}
				h.writeFile(rel, n, seed)
				seed++
				total += n
			}
			// The sidecar is a real manifest with the writer's quality
			// summary (pkg/manifest), uploaded beside its file.
			sizes[gaps] = len(h.writeManifest(gaps))
			total += sizes[gaps]
			// Never uploaded: files being written, and what is not the layout.
			for _, rel := range []string{
				"spot/diff_orderbooks/BTCUSDT/.2026-11-22.parquet.tmp",
				"spot/diff_orderbooks/BTCUSDT/2026-11-22.parquet.tmp42",
				"spot/diff_orderbooks/BTCUSDT/2026-11-22.parquet.part",
				"nats/jetstream/spot/diff_orderbooks/X/a.parquet",
				".writer/spot/diff_orderbooks/BTCUSDT/2026-11-21.parquet",
				"spot/.parts/BTCUSDT/2026-11-22.parquet",
				"spot/diff_orderbooks/btcusdt/2026-11-21.parquet",
			} {
				p := filepath.Join(h.dataDir, filepath.FromSlash(rel))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("not sealed"), 0o644); err != nil {
					t.Fatal(err)
				}
			}

			r := h.start(loadConfig(t, h.env(map[string]string{"S3_CHECKSUM": algo.name})))
			h.publish(h.sealed(big, gaps))
			for rel := range sizes {
				if rel != big && rel != gaps {
					h.publish(h.sealed(rel))
				}
			}
			waitFor(t, 60*time.Second, "4 messages acked", func() bool {
				return r.metric("depthcap_upload_messages_total", "action", "ack") == 4 && h.filesPending() == 0
			})

			var want []string
			for rel := range sizes {
				want = append(want, "md/"+rel)
			}
			sort.Strings(want)
			got := h.keys("")
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("bucket holds\n%s\nwant exactly\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			for rel, data := range h.files {
				key := "md/" + rel
				equalBytes(t, key, h.object(key), data)
				oi := h.stat(key)
				if c := oi.Checksum(algo.ct); c != checksumOf(algo.ct, data) {
					t.Errorf("%s: store %s = %q, local %q", key, algo.name, c, checksumOf(algo.ct, data))
				}
				if oi.ChecksumMode != "FULL_OBJECT" {
					t.Errorf("%s: checksum type %q, want FULL_OBJECT", key, oi.ChecksumMode)
				}
				if s := oi.Metadata.Get("X-Amz-Meta-Sha256"); s != sha256Hex(data) {
					t.Errorf("%s: x-amz-meta-sha256 = %q, want %q", key, s, sha256Hex(data))
				}
				if _, err := os.Stat(h.ledgerRecord("verified", rel)); err != nil {
					t.Errorf("%s: no ledger record: %v", rel, err)
				}
				if !h.localExists(rel) {
					t.Errorf("%s deleted with LOCAL_RETENTION=0", rel)
				}
			}
			up, err := manifest.Parse(h.object("md/" + gaps))
			if err != nil {
				t.Fatalf("uploaded manifest: %v", err)
			}
			if q := up.Quality; q == nil || q.Bridge == nil || !q.Bridge.Restorable || q.GapCount != up.GapCount {
				t.Errorf("uploaded manifest quality %+v, want the writer's summary", q)
			}
			if n := r.files(uploader.ResultUploaded); n != len(sizes) {
				t.Errorf("uploaded = %d, want %d (each file exactly once)", n, len(sizes))
			}
			if b := r.metric("depthcap_upload_bytes_total"); b != float64(total) {
				t.Errorf("bytes_total = %v, want %d", b, total)
			}
			if n := r.metric("depthcap_upload_duration_seconds"); n != float64(len(sizes)) {
				t.Errorf("latency histogram has %v samples, want %d", n, len(sizes))
			}
			waitFor(t, 10*time.Second, "empty backlog and ready", func() bool {
				return r.metric("depthcap_upload_backlog_files") == 0 && len(r.health.Ready()) == 0
			})
		})
	}
}

// Proves: uploads are idempotent. A second run on the same DATA_DIR,
// with the messages delivered again, sends nothing (the ledger answers);
// a third run without the ledger finds identical objects and records them
// without re-uploading: the objects' files in the store are untouched
// (same inode and mtime).
func TestIdempotentRerun(t *testing.T) {
	h := newHarness(t)
	rels := []string{
		"spot/diff_orderbooks/BTCUSDT/2026-11-21.parquet",
		"spot/diff_orderbooks/ETHUSDT/2026-11-21.parquet",
		"futures/partial_orderbooks/BTCUSDT/2026-11-21.parquet",
	}
	for i, rel := range rels {
		h.writeFile(rel, 6<<20*(i%2)+100_000, uint64(i+10)) // one multipart
	}
	cfg := loadConfig(t, h.env(map[string]string{"UPLOAD_SCAN_INTERVAL": "1h"}))

	r1 := h.start(cfg)
	for _, rel := range rels {
		h.publish(h.sealed(rel))
	}
	waitFor(t, 60*time.Second, "first run uploads", func() bool {
		return r1.files(uploader.ResultUploaded) == len(rels) && h.filesPending() == 0
	})
	r1.stop()
	type ident struct {
		ino   uint64
		mtime time.Time
	}
	identity := func() map[string]ident {
		out := map[string]ident{}
		for _, rel := range rels {
			fi, err := os.Stat(filepath.Join(h.s3.Root, testBucket, "md", filepath.FromSlash(rel)))
			if err != nil {
				t.Fatal(err)
			}
			out[rel] = ident{fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime()}
		}
		return out
	}
	before := identity()

	r2 := h.start(cfg)
	for _, rel := range rels {
		h.publish(h.sealed(rel))
	}
	waitFor(t, 30*time.Second, "second run acks", func() bool {
		return r2.metric("depthcap_upload_messages_total", "action", "ack") == float64(len(rels)) && h.filesPending() == 0
	})
	if n := r2.files(uploader.ResultUploaded); n != 0 {
		t.Errorf("second run uploaded %d files, want 0", n)
	}
	if n := r2.files(uploader.ResultAlreadyVerified); n < len(rels) {
		t.Errorf("second run: already_verified = %d, want >= %d", n, len(rels))
	}
	r2.stop()

	if err := os.RemoveAll(filepath.Join(h.dataDir, uploader.LedgerDir)); err != nil {
		t.Fatal(err)
	}
	r3 := h.start(cfg)
	waitFor(t, 30*time.Second, "third run reconciles", func() bool {
		return r3.files(uploader.ResultExistsIdentical) == len(rels)
	})
	if n := r3.files(uploader.ResultUploaded); n != 0 {
		t.Errorf("third run uploaded %d files, want 0", n)
	}
	for _, rel := range rels {
		if _, err := os.Stat(h.ledgerRecord("verified", rel)); err != nil {
			t.Errorf("ledger not rebuilt for %s: %v", rel, err)
		}
	}
	if after := identity(); !equalIdent(before, after) {
		t.Errorf("objects were rewritten: before %v after %v", before, after)
	}
}

func equalIdent[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Proves: when the store goes away for 20s in the middle of a backlog,
// the uploader keeps running (no crash, not ready, errors counted), no
// local file is deleted while nothing can be verified, and once the
// store is back every file is uploaded, verified and only then deleted
// by retention.
func TestStoreOutage(t *testing.T) {
	h := newHarness(t)
	const n = 16
	var rels []string
	for i := range n {
		rel := "spot/diff_orderbooks/SYM" + string(rune('A'+i)) + "USDT/2026-11-21.parquet"
		h.writeFile(rel, 1_500_000, uint64(100+i))
		rels = append(rels, rel)
	}
	r := h.start(loadConfig(t, h.env(map[string]string{
		"UPLOAD_CONCURRENCY":   "2",
		"UPLOAD_MAX_BANDWIDTH": "4MiB",
		"LOCAL_RETENTION":      "1ns",
		"UPLOAD_SCAN_INTERVAL": "200ms",
	})))
	for _, rel := range rels {
		h.publish(h.sealed(rel))
	}
	waitFor(t, 60*time.Second, "3 uploads before the outage", func() bool { return r.files(uploader.ResultUploaded) >= 3 })

	deleted := func() map[string]bool {
		out := map[string]bool{}
		for _, rel := range rels {
			if !h.localExists(rel) {
				out[rel] = true
			}
		}
		return out
	}
	h.s3.Kill()
	// A retention delete whose HEAD succeeded just before the kill may
	// still land; after that nothing can be verified, so nothing may go.
	time.Sleep(time.Second)
	baseline := deleted()
	errsBefore := r.metric("depthcap_upload_errors_total", "class", "transient")
	outageEnd := time.Now().Add(19 * time.Second)
	for time.Now().Before(outageEnd) {
		if d := deleted(); len(d) != len(baseline) {
			t.Fatalf("files deleted while the store was down: %d before, %d now", len(baseline), len(d))
		}
		select {
		case err := <-r.done:
			t.Fatalf("Run returned during the outage: %v", err)
		default:
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := r.metric("depthcap_upload_errors_total", "class", "transient"); got <= errsBefore {
		t.Errorf("no transient errors counted during the outage (%v before, %v after)", errsBefore, got)
	}
	if r.metric("depthcap_upload_store_up") != 0 {
		t.Error("store_up = 1 during the outage")
	}
	if _, bad := r.health.Ready()["s3"]; !bad {
		t.Error("/readyz s3 check passes during the outage")
	}
	if r.metric("depthcap_upload_backlog_files") == 0 {
		t.Error("backlog_files = 0 during the outage")
	}
	t.Logf("outage: %d files verified and deleted before it, %d in the backlog", len(baseline), int(r.metric("depthcap_upload_backlog_files")))

	h.s3.Restart()
	waitFor(t, 90*time.Second, "all files uploaded, verified and retired", func() bool {
		return len(deleted()) == n && h.filesPending() == 0
	})
	for _, rel := range rels {
		equalBytes(t, rel, h.object("md/"+rel), h.files[rel])
	}
	if got := r.files(uploader.ResultUploaded) + r.files(uploader.ResultExistsIdentical); got < n {
		t.Errorf("uploaded + exists_identical = %d, want >= %d", got, n)
	}
	if d := r.metric("depthcap_upload_retention_deleted_files_total"); d != n {
		t.Errorf("retention deleted %v files, want %d", d, n)
	}
	waitFor(t, 30*time.Second, "ready again", func() bool { return len(r.health.Ready()) == 0 })
}

// Proves: with rejected credentials the uploader reports an error that
// names S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY (error log and /readyz)
// and never shows the keys; it keeps running, acks nothing, deletes
// nothing, and the backlog metrics show the waiting files.
func TestWrongCredentials(t *testing.T) {
	cases := []struct{ name, key, secret string }{
		{"wrong secret", s3test.AccessKey, "wrong-secret-5c2e91"},
		{"unknown key", "unknown-key-77a1", "wrong-secret-5c2e91"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			rels := []string{"spot/diff_orderbooks/BTCUSDT/2026-11-21.parquet", "spot/diff_orderbooks/ETHUSDT/2026-11-21.parquet", "futures/diff_orderbooks/BTCUSDT/2026-11-21.parquet"}
			var total int
			for i, rel := range rels {
				total += len(h.writeFile(rel, 50_000*(i+1), uint64(i)))
			}
			r := h.start(loadConfig(t, h.env(map[string]string{
				"S3_ACCESS_KEY_ID": tc.key, "S3_SECRET_ACCESS_KEY": tc.secret,
				"LOCAL_RETENTION": "1ns", "UPLOAD_SCAN_INTERVAL": "200ms",
			})))
			for _, rel := range rels {
				h.publish(h.sealed(rel))
			}
			waitFor(t, 30*time.Second, "credential errors and a full backlog", func() bool {
				return r.metric("depthcap_upload_errors_total", "class", "credentials") >= 3 &&
					r.metric("depthcap_upload_backlog_files") == float64(len(rels))
			})
			if b := r.metric("depthcap_upload_backlog_bytes"); b != float64(total) {
				t.Errorf("backlog_bytes = %v, want %d", b, total)
			}
			if age := r.metric("depthcap_upload_oldest_pending_age_seconds"); age <= 0 {
				t.Errorf("oldest_pending_age_seconds = %v, want > 0", age)
			}
			ready := r.health.Ready()["s3"]
			for _, name := range []string{"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"} {
				if !strings.Contains(ready, name) {
					t.Errorf("/readyz s3 check %q does not name %s", ready, name)
				}
			}
			if !errors.Is(r.u.StoreReady(), uploader.ErrCredentials) {
				t.Errorf("StoreReady() = %v, want ErrCredentials", r.u.StoreReady())
			}
			var named bool
			for _, e := range r.logs.FilterLevelExact(zapcore.ErrorLevel).All() {
				if strings.Contains(e.ContextMap()["error"].(string), "S3_SECRET_ACCESS_KEY") {
					named = true
				}
			}
			if !named {
				t.Error("no error-level log names S3_SECRET_ACCESS_KEY")
			}
			logs := r.logged() + ready
			for _, secret := range []string{tc.secret, tc.key} {
				if strings.Contains(logs, secret) {
					t.Errorf("a key value appears in logs or /readyz: %q", secret)
				}
			}
			for _, rel := range rels {
				if !h.localExists(rel) {
					t.Errorf("%s deleted although nothing was uploaded", rel)
				}
			}
			if keys := h.keys(""); len(keys) != 0 {
				t.Errorf("bucket holds %v", keys)
			}
			if p := h.filesPending(); p != uint64(len(rels)) {
				t.Errorf("FILES holds %d messages, want %d (none acked)", p, len(rels))
			}
			select {
			case err := <-r.done:
				t.Fatalf("Run returned: %v", err)
			default:
			}
		})
	}
}

// Proves: a different object already under the key is detected (same
// size with other bytes, and another size), reported (error log naming
// the key, conflict count, parked gauge), never overwritten; the local
// file is kept even past LOCAL_RETENTION; the message is terminated, not
// retried, and later scans leave the file alone. After the operator
// removes the object and the conflict record, the next scan uploads it.
func TestConflictingObject(t *testing.T) {
	h := newHarness(t)
	const sameSize = "spot/diff_orderbooks/BTCUSDT/2026-11-21.parquet"
	const otherSize = "spot/diff_orderbooks/ETHUSDT/2026-11-21.parquet"
	h.writeFile(sameSize, 300_000, 1)
	h.writeFile(otherSize, 200_000, 2)
	c := h.s3.Client(t)
	foreign := map[string][]byte{sameSize: bytes.Repeat([]byte{7}, 300_000), otherSize: []byte("someone else's object")}
	for rel, b := range foreign {
		if _, err := c.PutObject(context.Background(), testBucket, "md/"+rel, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r := h.start(loadConfig(t, h.env(map[string]string{"LOCAL_RETENTION": "1ns", "UPLOAD_SCAN_INTERVAL": "200ms"})))
	h.publish(h.sealed(sameSize))
	h.publish(h.sealed(otherSize))
	waitFor(t, 30*time.Second, "two conflicts, messages settled", func() bool {
		return r.files(uploader.ResultConflict) == 2 && h.filesPending() == 0
	})
	time.Sleep(time.Second) // five more scans
	if n := r.files(uploader.ResultConflict); n != 2 {
		t.Errorf("conflict counted %d times, want 2: parked files must not be retried", n)
	}
	if n := r.files(uploader.ResultUploaded); n != 0 {
		t.Errorf("uploaded = %d, want 0", n)
	}
	if n := r.metric("depthcap_upload_messages_total", "action", "term"); n != 2 {
		t.Errorf("terminated messages = %v, want 2", n)
	}
	if g := r.metric("depthcap_upload_parked_files"); g != 2 {
		t.Errorf("parked_files = %v, want 2", g)
	}
	for rel, b := range foreign {
		equalBytes(t, "object "+rel+" after the conflict", h.object("md/"+rel), b)
		if !h.localExists(rel) {
			t.Errorf("%s deleted despite the conflict", rel)
		}
		if _, err := os.Stat(h.ledgerRecord("conflicts", rel)); err != nil {
			t.Errorf("no conflict record for %s: %v", rel, err)
		}
		found := false
		for _, e := range r.logs.FilterMessage("file parked for an operator").All() {
			if e.Level == zapcore.ErrorLevel && e.ContextMap()["key"] == "md/"+rel {
				found = true
			}
		}
		if !found {
			t.Errorf("no error log names key md/%s", rel)
		}
	}

	// The operator's resolution: remove the foreign object and the record.
	if err := c.RemoveObject(context.Background(), testBucket, "md/"+otherSize, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(h.ledgerRecord("conflicts", otherSize)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the released file uploaded and retired", func() bool {
		return r.files(uploader.ResultUploaded) == 1 && !h.localExists(otherSize)
	})
	equalBytes(t, "released object", h.object("md/"+otherSize), h.files[otherSize])
	if !h.localExists(sameSize) {
		t.Error("the still-parked file was deleted")
	}
}

// Proves: LOCAL_RETENTION deletes exactly the verified files older than
// the retention: not a verified file younger than it, not an old file
// without a verified upload (parked), and not an old verified file whose
// object vanished from the store since (that one is uploaded again and
// verified first, then deleted). LOCAL_RETENTION=0 deletes nothing.
func TestRetention(t *testing.T) {
	h := newHarness(t)
	const (
		old      = "spot/diff_orderbooks/BTCUSDT/2026-11-19.parquet"
		fresh    = "spot/diff_orderbooks/BTCUSDT/2026-11-21.parquet"
		parked   = "spot/diff_orderbooks/ETHUSDT/2026-11-19.parquet"
		vanished = "futures/diff_orderbooks/BTCUSDT/2026-11-19.parquet"
	)
	for i, rel := range []string{old, fresh, parked, vanished} {
		h.writeFile(rel, 100_000+i, uint64(i))
		if rel != fresh {
			past := time.Now().Add(-2 * time.Hour)
			if err := os.Chtimes(filepath.Join(h.dataDir, filepath.FromSlash(rel)), past, past); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := h.s3.Client(t)
	if _, err := c.PutObject(context.Background(), testBucket, "md/"+parked, strings.NewReader("foreign"), 7, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	// Run 1 keeps everything (LOCAL_RETENTION=0).
	r1 := h.start(loadConfig(t, h.env(map[string]string{"UPLOAD_SCAN_INTERVAL": "100ms"})))
	for _, rel := range []string{old, fresh, parked, vanished} {
		h.publish(h.sealed(rel))
	}
	waitFor(t, 30*time.Second, "3 uploads and a conflict", func() bool {
		return r1.files(uploader.ResultUploaded) == 3 && r1.files(uploader.ResultConflict) == 1 && h.filesPending() == 0
	})
	time.Sleep(500 * time.Millisecond)
	for _, rel := range []string{old, fresh, parked, vanished} {
		if !h.localExists(rel) {
			t.Fatalf("%s deleted with LOCAL_RETENTION=0", rel)
		}
	}
	r1.stop()

	// The object of a verified file disappears from the store.
	if err := c.RemoveObject(context.Background(), testBucket, "md/"+vanished, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	r2 := h.start(loadConfig(t, h.env(map[string]string{"LOCAL_RETENTION": "1h", "UPLOAD_SCAN_INTERVAL": "100ms"})))
	waitFor(t, 30*time.Second, "old and vanished retired", func() bool {
		return !h.localExists(old) && !h.localExists(vanished)
	})
	time.Sleep(500 * time.Millisecond)
	if !h.localExists(fresh) {
		t.Error("a verified file younger than LOCAL_RETENTION was deleted")
	}
	if !h.localExists(parked) {
		t.Error("a file without a verified upload was deleted")
	}
	if n := r2.files(uploader.ResultUploaded); n != 1 {
		t.Errorf("run 2 uploaded %d files, want 1 (the vanished object)", n)
	}
	equalBytes(t, "re-uploaded object", h.object("md/"+vanished), h.files[vanished])
	equalBytes(t, "retired object", h.object("md/"+old), h.files[old])
	if d := r2.metric("depthcap_upload_retention_deleted_files_total"); d != 2 {
		t.Errorf("deleted_files_total = %v, want 2", d)
	}
}

// Proves invariant 6 for the uploader: malformed FILES messages (not a
// protobuf, a path outside the layout, a temp name) and a message whose
// file exists nowhere are terminated and counted; they neither crash the
// uploader nor hold up the good message behind them.
func TestBadMessages(t *testing.T) {
	h := newHarness(t)
	good := "spot/diff_orderbooks/BTCUSDT/2026-11-21.parquet"
	h.writeFile(good, 10_000, 1)
	r := h.start(loadConfig(t, h.env(map[string]string{"UPLOAD_SCAN_INTERVAL": "1h"})))
	subj := md.FilesSubject(md.Spot, md.Diff)
	h.publishRaw(subj, []byte("\xff\xfe not protobuf"))
	h.publish(&depthcapv1.FileSealed{Path: "../../etc/passwd", Size: 1})
	h.publish(&depthcapv1.FileSealed{Path: "spot/diff_orderbooks/BTCUSDT/.2026-11-21.parquet.tmp", Size: 1})
	h.publish(&depthcapv1.FileSealed{Path: "spot/diff_orderbooks/BTCUSDT/2026-11-20.parquet", Size: 5, Sha256: sha256Hex([]byte("never"))})
	h.publish(h.sealed(good))
	waitFor(t, 30*time.Second, "all messages settled", func() bool {
		return h.filesPending() == 0 && r.files(uploader.ResultUploaded) == 1
	})
	if n := r.metric("depthcap_upload_messages_total", "action", "term"); n != 4 {
		t.Errorf("terminated = %v, want 4", n)
	}
	if n := r.files(uploader.ResultMissing); n < 1 {
		t.Errorf("missing = %d, want >= 1", n)
	}
	equalBytes(t, "good object", h.object("md/"+good), h.files[good])
}

// Proves: without S3 settings the uploader is off: New returns
// ErrDisabled, and Run logs "uploader disabled" exactly once, idles
// (no restart loop) and returns nil when stopped.
func TestDisabled(t *testing.T) {
	cfg := loadConfig(t, map[string]string{"DATA_DIR": t.TempDir(), "NATS_EMBEDDED_LISTEN": "none"})
	if cfg.Enabled() {
		t.Fatal("Enabled() with no S3 settings")
	}
	if _, err := uploader.New(cfg, nil, svc.Env{}); !errors.Is(err, uploader.ErrDisabled) {
		t.Fatalf("New = %v, want ErrDisabled", err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	reg := svc.NewRegistry()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := uploader.Run(ctx, &cfg, svc.Env{Log: zap.New(core), Registry: reg, Health: svc.NewHealth()}); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if time.Since(start) < 400*time.Millisecond {
		t.Error("Run returned before it was stopped")
	}
	if n := logs.FilterMessage("uploader disabled").Len(); n != 1 || logs.Len() != 1 {
		t.Errorf("logged %d lines, %d of them 'uploader disabled'; want exactly one", logs.Len(), n)
	}
	if v := gather(t, reg, "depthcap_upload_enabled"); v != 0 {
		t.Errorf("depthcap_upload_enabled = %v", v)
	}
}
