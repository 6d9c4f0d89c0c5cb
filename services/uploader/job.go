package uploader

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	depthcapv1 "github.com/depthcap/depthcap/pkg/gen/depthcap/v1"
)

// spec is one file to upload, with what its FileSealed message says
// about it (size > 0 and sha256 != "" when known).
type spec struct {
	rel    string
	size   int64
	sha256 string
}

// outcome is how a file ended.
type outcome struct {
	result string // Result*
	parked bool   // an operator must act; the message is terminated
}

// errLocal marks failures on the local side (reading DATA_DIR, writing
// the ledger): retried like store outages, but they do not mark the store
// down.
var errLocal = errors.New("local")

// errVerify is returned when an object we just uploaded does not match
// the local file; the next attempt re-examines it (and parks it as a
// conflict if it is still different).
var errVerify = errors.New("uploaded object does not match the local file")

// handleMessage uploads the files of one FileSealed message (sidecars
// first, so that a visible data file implies its sidecars are there) and
// settles the message: ack when every file is verified, term when the
// message is malformed or a file is parked, nak when the uploader stops.
func (u *Uploader) handleMessage(ctx, work context.Context, msg jetstream.Msg) {
	var sealed depthcapv1.FileSealed
	if err := proto.Unmarshal(msg.Data(), &sealed); err != nil {
		u.log.Error("bad FILES message", zap.String("subject", msg.Subject()), zap.Error(err))
		u.settle(work, msg, "term", "not a FileSealed protobuf")
		return
	}
	specs := make([]spec, 0, len(sealed.GetSidecars())+1)
	for _, sc := range sealed.GetSidecars() {
		specs = append(specs, spec{rel: sc.GetPath(), size: sc.GetSize(), sha256: strings.ToLower(sc.GetSha256())})
	}
	specs = append(specs, spec{rel: sealed.GetPath(), size: sealed.GetSize(), sha256: strings.ToLower(sealed.GetSha256())})
	for _, sp := range specs {
		if err := CheckPath(sp.rel); err != nil {
			u.log.Error("bad FILES message", zap.String("subject", msg.Subject()), zap.Error(err))
			u.settle(work, msg, "term", "bad path: "+err.Error())
			return
		}
	}
	var parked []string
	missing := false
	for _, sp := range specs {
		out, err := u.processFile(ctx, work, sp)
		if err != nil { // stopping
			u.settle(work, msg, "nak", "")
			return
		}
		if out.parked {
			parked = append(parked, out.result+" "+sp.rel)
			missing = missing || out.result == ResultMissing
		}
	}
	if len(parked) == 0 {
		u.settle(work, msg, "ack", "")
		return
	}
	if missing {
		// The file may be on another uploader's disk (several writer
		// hosts sharing one FILES queue): hand it back a few times.
		if meta, err := msg.Metadata(); err == nil && meta.NumDelivered < missingMaxDeliveries {
			u.settle(work, msg, "nak", "")
			return
		}
	}
	u.settle(work, msg, "term", strings.Join(parked, "; "))
}

// settle acks, naks (with the retry delay) or terminates msg. A lost ack
// only causes a redelivery, which the ledger turns into an ack.
func (u *Uploader) settle(ctx context.Context, msg jetstream.Msg, action, reason string) {
	var err error
	switch action {
	case "ack":
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = msg.DoubleAck(actx)
		cancel()
	case "nak":
		err = msg.NakWithDelay(u.cfg.RetryMin)
	case "term":
		err = msg.TermWithReason(reason)
	}
	u.m.messages.WithLabelValues(action).Inc()
	if err != nil {
		u.log.Warn("settle FILES message", zap.String("action", action), zap.String("subject", msg.Subject()), zap.Error(err))
	}
}

// processFile runs attempts on one file until it is settled (verified or
// parked), waiting out failures with backoff. It returns an error only
// when ctx ends first.
func (u *Uploader) processFile(ctx, work context.Context, sp spec) (outcome, error) {
	unlock, err := u.lock(ctx, sp.rel)
	if err != nil {
		return outcome{}, err
	}
	defer unlock()
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(work, u.cfg.AttemptTimeout)
		out, err := u.attempt(actx, sp)
		cancel()
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil { // stopping: the message is handed back
			return outcome{}, ctx.Err()
		}
		class := "local"
		if !errors.Is(err, errLocal) {
			c := classify(err)
			switch c {
			case classCredentials, classRegion, classBucket:
				class = c.String()
			default:
				c, class = classTransient, "transient"
			}
			if !errors.Is(err, errVerify) {
				u.noteStore(err)
			}
			u.logStoreError("upload attempt failed", fmt.Errorf("%s: %w", sp.rel, err), c)
		} else if ok, n := u.limit.Allow("local"); ok {
			u.log.Error("upload attempt failed", zap.String("class", class), zap.String("path", sp.rel), zap.Error(err), zap.Int("suppressed", n))
		}
		u.m.errors.WithLabelValues(class).Inc()
		if !sleep(ctx, u.backoff(attempt)) {
			return outcome{}, ctx.Err()
		}
	}
}

// digest is what the uploader knows about a local file's bytes.
type digest struct {
	size     int64
	sha256   string // hex
	checksum string // full-object checksum of the configured algorithm, base64
}

func (u *Uploader) hashFile(f *os.File) (digest, error) {
	sh := sha256.New()
	cs := u.st.ct.Hasher()
	n, err := io.Copy(io.MultiWriter(sh, cs), f)
	if err != nil {
		return digest{}, err
	}
	return digest{size: n, sha256: hex.EncodeToString(sh.Sum(nil)), checksum: base64.StdEncoding.EncodeToString(cs.Sum(nil))}, nil
}

// recordValid reports whether a ledger record is about the current
// target (endpoint, bucket, key).
func (u *Uploader) recordValid(r *record, key string) bool {
	return r.Endpoint == u.st.endpoint && r.Bucket == u.st.bucket && r.Key == key
}

// attempt is one pass over a file: ledger, local file, store. It returns
// an error for anything worth retrying.
func (u *Uploader) attempt(ctx context.Context, sp spec) (outcome, error) {
	start := time.Now()
	key := u.st.key(sp.rel)
	local := filepath.Join(u.cfg.DataDir, filepath.FromSlash(sp.rel))
	fi, statErr := os.Stat(local)
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return outcome{}, fmt.Errorf("%w: stat %s: %w", errLocal, local, statErr)
	}

	// 1. Verified before (and not changed since)?
	rec, err := u.led.get(verifiedDir, sp.rel)
	if err != nil {
		return outcome{}, fmt.Errorf("%w: %w", errLocal, err)
	}
	if rec != nil && u.recordValid(rec, key) && (sp.sha256 == "" || sp.sha256 == rec.SHA256) &&
		(statErr != nil || fi.Size() == rec.Size && fi.ModTime().Equal(rec.ModTime)) {
		u.bl.done(sp.rel)
		u.m.files.WithLabelValues(ResultAlreadyVerified).Inc()
		return outcome{result: ResultAlreadyVerified}, nil
	}

	// 2. Parked for an operator?
	if c, err := u.led.get(conflictDir, sp.rel); err != nil {
		return outcome{}, fmt.Errorf("%w: %w", errLocal, err)
	} else if c != nil {
		// Counted once, when it was parked.
		return outcome{result: c.Reason, parked: true}, nil
	}

	// 3. The local file.
	if statErr != nil {
		return u.missing(ctx, sp, key)
	}
	if !fi.Mode().IsRegular() {
		return outcome{}, fmt.Errorf("%w: %s is not a regular file", errLocal, local)
	}
	u.bl.add(localFile{rel: sp.rel, size: fi.Size(), modTime: fi.ModTime()})
	f, err := os.Open(local)
	if err != nil {
		return outcome{}, fmt.Errorf("%w: open %s: %w", errLocal, local, err)
	}
	defer func() { _ = f.Close() }() // read-only
	d, err := u.hashFile(f)
	if err != nil {
		return outcome{}, fmt.Errorf("%w: read %s: %w", errLocal, local, err)
	}
	if d.size != fi.Size() {
		return outcome{}, fmt.Errorf("%w: %s changed size while being read (%d then %d bytes): a sealed file must not change", errLocal, local, fi.Size(), d.size)
	}
	if sp.size > 0 && sp.size != d.size || sp.sha256 != "" && sp.sha256 != d.sha256 {
		return u.park(sp, key, fi, d, nil, ResultLocalMismatch,
			fmt.Sprintf("local file has %d bytes, sha256 %s; its FileSealed message says %d bytes, sha256 %s", d.size, d.sha256, sp.size, sp.sha256))
	}

	// 4. Already in the store?
	r, err := u.st.stat(ctx, key)
	if err != nil {
		return outcome{}, err
	}
	if r != nil {
		u.noteStore(nil)
		return u.existing(ctx, sp, key, fi, d, r)
	}
	// Not found says nothing of the store's health: a HEAD answer has no
	// body, and versitygw answers an unknown access key's HEAD with 404,
	// which would clear the probe's credentials error (TestWrongCredentials
	// failed so in a CI run). The put below tells.

	// 5. Upload, then verify.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return outcome{}, fmt.Errorf("%w: seek %s: %w", errLocal, local, err)
	}
	etag, err := u.st.put(ctx, key, f, d.size, d.sha256)
	if err != nil {
		if classify(err) == classPrecondition {
			// Created by someone else since the stat: compare with it.
			if r, serr := u.st.stat(ctx, key); serr != nil {
				return outcome{}, serr
			} else if r != nil {
				return u.existing(ctx, sp, key, fi, d, r)
			}
		}
		return outcome{}, err
	}
	u.noteStore(nil)
	r, err = u.st.stat(ctx, key)
	if err != nil {
		return outcome{}, fmt.Errorf("verify: %w", err)
	}
	if r == nil {
		return outcome{}, fmt.Errorf("verify %s: %w: no object after the upload", key, errVerify)
	}
	method, same, err := u.compare(ctx, key, r, d)
	if err != nil {
		return outcome{}, fmt.Errorf("verify: %w", err)
	}
	if !same {
		return outcome{}, fmt.Errorf("verify %s: %w: store has %d bytes, checksum %q, sha256 %q; local %d bytes, checksum %q, sha256 %q",
			key, errVerify, r.Size, r.Checksum, r.SHA256, d.size, d.checksum, d.sha256)
	}
	if r.ETag != "" {
		etag = r.ETag
	}
	if err := u.record(sp.rel, key, fi, d, method, etag); err != nil {
		return outcome{}, err
	}
	took := time.Since(start)
	u.m.files.WithLabelValues(ResultUploaded).Inc()
	u.m.bytes.Add(float64(d.size))
	u.m.duration.Observe(took.Seconds())
	u.log.Info("file uploaded", zap.String("path", sp.rel), zap.String("key", key), zap.Int64("bytes", d.size),
		zap.String("verified_by", method), zap.Duration("took", took))
	if d.size > u.st.partSize {
		if err := u.st.abortStale(ctx, key); err != nil {
			u.log.Warn("clean up after a multipart upload", zap.String("key", key), zap.Error(u.safe(err)))
		}
	}
	return outcome{result: ResultUploaded}, nil
}

// missing handles a message whose local file does not exist: fine if the
// store holds exactly the file the message describes (uploaded before and
// deleted by retention, ledger and all), otherwise it is parked.
func (u *Uploader) missing(ctx context.Context, sp spec, key string) (outcome, error) {
	if sp.size > 0 && sp.sha256 != "" {
		r, err := u.st.stat(ctx, key)
		if err != nil {
			return outcome{}, err
		}
		if r != nil && r.Size == sp.size && r.SHA256 == sp.sha256 {
			u.bl.done(sp.rel)
			u.m.files.WithLabelValues(ResultExistsIdentical).Inc()
			return outcome{result: ResultExistsIdentical}, nil
		}
	}
	u.m.files.WithLabelValues(ResultMissing).Inc()
	u.log.Error("sealed file missing", zap.String("path", sp.rel), zap.String("key", key),
		zap.String("data_dir", u.cfg.DataDir))
	return outcome{result: ResultMissing, parked: true}, nil
}

// existing settles a file whose key is already taken: identical objects
// are verified and recorded without an upload; a different object is
// never overwritten, the file is parked.
func (u *Uploader) existing(ctx context.Context, sp spec, key string, fi os.FileInfo, d digest, r *remote) (outcome, error) {
	method, same, err := u.compare(ctx, key, r, d)
	if err != nil {
		return outcome{}, err
	}
	if !same {
		return u.park(sp, key, fi, d, r, ResultConflict,
			fmt.Sprintf("a different object is under the key: %d bytes, checksum %q, sha256 %q, etag %q; local %d bytes, checksum %q, sha256 %q",
				r.Size, r.Checksum, r.SHA256, r.ETag, d.size, d.checksum, d.sha256))
	}
	if err := u.record(sp.rel, key, fi, d, method, r.ETag); err != nil {
		return outcome{}, err
	}
	u.m.files.WithLabelValues(ResultExistsIdentical).Inc()
	u.log.Info("object already present", zap.String("path", sp.rel), zap.String("key", key), zap.String("verified_by", method))
	return outcome{result: ResultExistsIdentical}, nil
}

// compare tells whether the object r is the local file d, and how it
// knows: the store's full-object checksum if it returned one (plus the
// x-amz-meta-sha256 when present), else size and x-amz-meta-sha256, else
// the object's bytes read back.
func (u *Uploader) compare(ctx context.Context, key string, r *remote, d digest) (string, bool, error) {
	if r.Size != d.size {
		return "", false, nil
	}
	if r.Checksum != "" {
		same := r.Checksum == d.checksum && (r.SHA256 == "" || r.SHA256 == d.sha256)
		return verifiedChecksum, same, nil
	}
	if r.SHA256 != "" {
		if u.warnedNoCsum.CompareAndSwap(false, true) {
			u.log.Warn("store returned no full-object checksum; verifying by size and x-amz-meta-sha256",
				zap.String("key", key), zap.String("checksum", u.st.ct.String()), zap.String("checksum_type", r.ChecksumType))
		}
		return verifiedMetadata, r.SHA256 == d.sha256, nil
	}
	sha, n, err := u.st.contentSHA256(ctx, key)
	if err != nil {
		return "", false, err
	}
	return verifiedContent, n == d.size && sha == d.sha256, nil
}

// record writes the verified record and takes the file off the backlog.
func (u *Uploader) record(rel, key string, fi os.FileInfo, d digest, method, etag string) error {
	rec := &record{
		Path: rel, Endpoint: u.st.endpoint, Bucket: u.st.bucket, Key: key,
		Size: d.size, ModTime: fi.ModTime(), SHA256: d.sha256,
		ChecksumAlgo: u.st.ct.String(), Checksum: d.checksum,
		Method: method, ETag: etag, At: time.Now().UTC(),
	}
	if err := u.led.put(verifiedDir, rec); err != nil {
		return fmt.Errorf("%w: %w", errLocal, err)
	}
	u.bl.done(rel)
	return nil
}

// park records a file that needs an operator. It is not retried (the
// scan skips parked files) and never deleted by retention; the operator
// removes DATA_DIR/.uploader/conflicts/<path>.json to release it.
func (u *Uploader) park(sp spec, key string, fi os.FileInfo, d digest, r *remote, result, reason string) (outcome, error) {
	rec := &record{
		Path: sp.rel, Endpoint: u.st.endpoint, Bucket: u.st.bucket, Key: key,
		Size: d.size, ModTime: fi.ModTime(), SHA256: d.sha256,
		ChecksumAlgo: u.st.ct.String(), Checksum: d.checksum,
		Reason: result, Remote: r, At: time.Now().UTC(),
	}
	if err := u.led.put(conflictDir, rec); err != nil {
		return outcome{}, fmt.Errorf("%w: %w", errLocal, err)
	}
	// An earlier verification (e.g. by a scan, before the message said
	// what the file should be) no longer stands: retention must keep it.
	if err := u.led.remove(verifiedDir, sp.rel); err != nil {
		return outcome{}, fmt.Errorf("%w: %w", errLocal, err)
	}
	u.m.files.WithLabelValues(result).Inc()
	u.m.conflicts.Inc()
	u.log.Error("file parked for an operator",
		zap.String("result", result), zap.String("path", sp.rel), zap.String("key", key), zap.String("bucket", u.st.bucket),
		zap.String("detail", reason),
		zap.String("ledger", filepath.Join(LedgerDir, conflictDir, filepath.FromSlash(sp.rel)+".json")))
	return outcome{result: result, parked: true}, nil
}

// scanLoop reconciles DATA_DIR with the store at start-up and every
// UPLOAD_SCAN_INTERVAL. It never waits for upload slots: the files a scan
// finds go to dispatchLoop, so retention and the backlog gauges stay
// current while every slot is busy or the store is down.
func (u *Uploader) scanLoop(ctx context.Context, batches chan []localFile) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		todo := u.scan(ctx)
		// Hand over the newest batch; an older one not yet taken is stale.
		select {
		case <-batches:
		default:
		}
		batches <- todo
		t.Reset(u.cfg.ScanInterval)
	}
}

// dispatchLoop starts an upload job per file found by the scans, as
// upload slots free up, switching to a newer scan's batch when one
// arrives.
func (u *Uploader) dispatchLoop(ctx, work context.Context, batches <-chan []localFile) {
	var todo []localFile
	for {
		if len(todo) == 0 {
			select {
			case <-ctx.Done():
				return
			case todo = <-batches:
				continue
			}
		}
		f := todo[0]
		if u.busy(f.rel) {
			todo = todo[1:]
			continue
		}
		select {
		case <-ctx.Done():
			return
		case todo = <-batches:
			continue
		case u.slots <- struct{}{}:
		}
		todo = todo[1:]
		u.jobs.Add(1)
		go func() {
			defer u.jobs.Done()
			defer u.release()
			_, _ = u.processFile(ctx, work, spec{rel: f.rel})
		}()
	}
}

// scan walks DATA_DIR: it rebuilds the backlog, applies LOCAL_RETENTION
// to verified files, and returns the files that need an upload.
func (u *Uploader) scan(ctx context.Context) []localFile {
	start := time.Now()
	next := make(map[string]pendingFile)
	var todo []localFile
	parked, verified := 0, 0
	retain := u.cfg.LocalRetention > 0
	err := walkSealed(u.cfg.DataDir, func(f localFile) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rec, err := u.led.get(verifiedDir, f.rel)
		if err != nil {
			return err
		}
		if rec != nil && u.recordValid(rec, u.st.key(f.rel)) && rec.Size == f.size && rec.ModTime.Equal(f.modTime) {
			verified++
			if retain && start.Sub(f.modTime) > u.cfg.LocalRetention {
				// A store failure ends retention for this scan: every
				// further check would fail the same way.
				retain = u.retire(ctx, f, rec)
			}
			return nil
		}
		next[f.rel] = pendingFile{size: f.size, modTime: f.modTime, added: start}
		if u.led.has(conflictDir, f.rel) {
			parked++
			return nil
		}
		if len(todo) < maxScanBatch {
			todo = append(todo, f)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		if ok, n := u.limit.Allow("scan"); ok {
			u.log.Error("scan DATA_DIR", zap.String("data_dir", u.cfg.DataDir), zap.Error(err), zap.Int("suppressed", n))
		}
	}
	pending := len(next)
	u.bl.replace(next, start)
	u.m.conflicts.Set(float64(parked))
	u.log.Debug("scan done", zap.Int("verified", verified), zap.Int("pending", pending), zap.Int("parked", parked),
		zap.Int("queued", len(todo)), zap.Duration("took", time.Since(start)))
	return todo
}

// retire deletes a verified local file past LOCAL_RETENTION, after a
// fresh HEAD shows the object still matches the record. If the object is
// gone or changed the record is dropped and the file is uploaded again.
// It reports false when the store could not be asked.
func (u *Uploader) retire(ctx context.Context, f localFile, rec *record) bool {
	unlock, ok := u.tryLock(f.rel)
	if !ok {
		return true
	}
	defer unlock()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	r, err := u.st.stat(sctx, rec.Key)
	cancel()
	if err != nil {
		u.noteStore(err)
		u.logStoreError("retention check failed; keeping the file", err, classify(err))
		return false
	}
	if r == nil || !u.matchesRecord(r, rec) {
		u.log.Warn("verified object missing or changed; uploading again",
			zap.String("path", f.rel), zap.String("key", rec.Key), zap.Bool("missing", r == nil))
		if err := u.led.remove(verifiedDir, f.rel); err != nil {
			u.log.Error("remove ledger record", zap.String("path", f.rel), zap.Error(err))
		}
		return true
	}
	local := filepath.Join(u.cfg.DataDir, filepath.FromSlash(f.rel))
	if err := os.Remove(local); err != nil && !errors.Is(err, fs.ErrNotExist) {
		u.log.Error("retention delete", zap.String("path", f.rel), zap.Error(err))
		return true
	}
	if err := syncDir(filepath.Dir(local)); err != nil {
		u.log.Warn("retention delete", zap.String("path", f.rel), zap.Error(err))
	}
	if err := u.led.remove(verifiedDir, f.rel); err != nil {
		u.log.Warn("retention delete", zap.String("path", f.rel), zap.Error(err))
	}
	u.m.deleted.Inc()
	u.m.deletedBytes.Add(float64(f.size))
	u.log.Info("retention deleted file", zap.String("path", f.rel), zap.String("key", rec.Key),
		zap.Int64("bytes", f.size), zap.Time("mtime", f.modTime))
	return true
}

// matchesRecord compares a fresh HEAD with a verified record: the
// checksum when the store returns ours, else the SHA-256 metadata, else
// the ETag.
func (u *Uploader) matchesRecord(r *remote, rec *record) bool {
	if r.Size != rec.Size {
		return false
	}
	switch {
	case r.Checksum != "" && rec.ChecksumAlgo == u.st.ct.String():
		return r.Checksum == rec.Checksum
	case r.SHA256 != "":
		return r.SHA256 == rec.SHA256
	default:
		return rec.ETag != "" && r.ETag == rec.ETag
	}
}
