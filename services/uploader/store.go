package uploader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/time/rate"
)

// Errors that name the setting to check. They wrap the store's error.
var (
	ErrCredentials = errors.New("S3 credentials rejected (check S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, and that the key may read and write S3_BUCKET)")
	ErrRegion      = errors.New("S3 region rejected (check S3_REGION; R2 expects auto)")
	ErrNoBucket    = errors.New("S3 bucket does not exist (check S3_BUCKET)")
)

// errClass sorts store errors by what can fix them.
type errClass int

const (
	classTransient      errClass = iota // network, 5xx, throttling: wait and retry
	classCredentials                    // 401/403: an operator fixes the keys (or they propagate)
	classRegion                         // wrong S3_REGION
	classBucket                         // no such bucket
	classNotFound                       // no such key: a normal answer
	classPrecondition                   // If-None-Match failed: the key exists
	classNotImplemented                 // the store lacks a feature we asked for
)

func (c errClass) String() string {
	switch c {
	case classCredentials:
		return "credentials"
	case classRegion:
		return "region"
	case classBucket:
		return "bucket"
	case classNotFound:
		return "not_found"
	case classPrecondition:
		return "precondition"
	case classNotImplemented:
		return "not_implemented"
	default:
		return "transient"
	}
}

// classify reads a minio-go error. errors.As, not minio.ToErrorResponse,
// so wrapped errors are recognized.
func classify(err error) errClass {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return classTransient
	}
	switch er.Code {
	case "NoSuchKey", "NotFound":
		return classNotFound
	case "NoSuchBucket":
		return classBucket
	case "PreconditionFailed":
		return classPrecondition
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidSecurity", "Unauthorized", "InvalidClientTokenId",
		"XAdminUserNotFound": // versitygw's answer (404) to an unknown access key
		return classCredentials
	case "AuthorizationHeaderMalformed", "InvalidRegion", "IllegalLocationConstraintException":
		return classRegion
	case "NotImplemented":
		return classNotImplemented
	}
	switch er.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return classCredentials
	case http.StatusPreconditionFailed:
		return classPrecondition
	}
	return classTransient
}

// wrapClass adds the sentinel that names the setting to check.
func wrapClass(err error) error {
	switch classify(err) {
	case classCredentials:
		return fmt.Errorf("%w: %w", ErrCredentials, err)
	case classRegion:
		return fmt.Errorf("%w: %w", ErrRegion, err)
	case classBucket:
		return fmt.Errorf("%w: %w", ErrNoBucket, err)
	}
	return err
}

// store is the S3 side: one bucket and key prefix, one checksum algorithm.
type store struct {
	c        *minio.Client
	endpoint string // host[:port], recorded in the ledger
	bucket   string
	prefix   string
	ct       minio.ChecksumType
	partSize int64
	threads  uint
	limiter  *rate.Limiter // nil: unlimited
	// noConditional is set once the store answers NotImplemented to
	// If-None-Match; uploads then rely on the stat before the put.
	noConditional atomic.Bool
}

func newStore(cfg *Config) (*store, error) {
	ep, err := ParseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	ct, err := ParseChecksum(cfg.Checksum)
	if err != nil {
		return nil, err
	}
	prefix, err := cleanPrefix(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	c, err := minio.New(ep.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKeyID.Value(), cfg.SecretAccessKey.Value(), ""),
		Secure: ep.Secure,
		Region: cfg.Region,
		// Trailing headers carry the x-amz-checksum-* value computed while
		// the body streams, so a file is read once per attempt.
		TrailingHeaders: true,
		// A few quick in-call retries smooth over a dropped connection in
		// the middle of a multipart upload; everything longer is the
		// uploader's own backoff.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for S3_ENDPOINT %s: %w", ep.Host, err)
	}
	s := &store{c: c, endpoint: ep.Host, bucket: cfg.Bucket, prefix: prefix, ct: ct, partSize: int64(cfg.PartSize), threads: uint(cfg.PartConcurrency)}
	if cfg.MaxBandwidth > 0 {
		burst := min(int(cfg.MaxBandwidth), 256<<10)
		s.limiter = rate.NewLimiter(rate.Limit(cfg.MaxBandwidth), burst)
	}
	return s, nil
}

// key is the object key of a path relative to DATA_DIR.
func (s *store) key(rel string) string {
	if s.prefix == "" {
		return rel
	}
	return s.prefix + "/" + rel
}

// remote is what the store holds under a key.
type remote struct {
	Size int64 `json:"size"`
	// Checksum is the full-object checksum of the configured algorithm,
	// base64; empty when the store returned none or only a composite
	// (part-based) one, which cannot be compared with a local file.
	Checksum     string    `json:"checksum,omitempty"`
	ChecksumType string    `json:"checksum_type,omitempty"`
	SHA256       string    `json:"sha256,omitempty"` // x-amz-meta-sha256
	ETag         string    `json:"etag,omitempty"`
	LastModified time.Time `json:"last_modified"`
}

// stat returns the object under key, or nil when there is none.
func (s *store) stat(ctx context.Context, key string) (*remote, error) {
	oi, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		if classify(err) == classNotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("stat %s: %w", key, wrapClass(err))
	}
	r := &remote{
		Size:         oi.Size,
		ChecksumType: oi.ChecksumMode,
		SHA256:       strings.ToLower(oi.Metadata.Get("X-Amz-Meta-Sha256")),
		ETag:         oi.ETag,
		LastModified: oi.LastModified,
	}
	if v := oi.Checksum(s.ct); v != "" && !strings.Contains(v, "-") && !strings.EqualFold(oi.ChecksumMode, "COMPOSITE") {
		r.Checksum = v
	}
	return r, nil
}

// put uploads f (size bytes) to key with the full-object checksum and the
// SHA-256 in x-amz-meta-sha256. A single-part upload is conditional
// (If-None-Match: *) so it never replaces an object that appeared after
// the stat; minio-go cannot send the condition with a multipart
// completion, where the stat before the upload is the guard.
func (s *store) put(ctx context.Context, key string, f *os.File, size int64, sha string) (string, error) {
	opts := minio.PutObjectOptions{
		Checksum: s.ct,
		// UNSIGNED-PAYLOAD with a trailing checksum, on http as on https.
		// minio-go otherwise signs every chunk over plain http
		// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER), which versitygw
		// v1.8.0 rejects with BadDigest for every algorithm; over https it
		// always uses the unsigned trailer. The checksum still covers every
		// byte, and the signature still covers the headers.
		DisableContentSha256: true,
		PartSize:             uint64(s.partSize),
		NumThreads:           s.threads,
		ContentType:          contentType(key),
		UserMetadata:         map[string]string{"sha256": sha},
	}
	conditional := size <= s.partSize && !s.noConditional.Load()
	if conditional {
		opts.SetMatchETagExcept("*")
	}
	var r io.Reader = f
	if s.limiter != nil {
		r = &throttled{f: f, lim: s.limiter, ctx: ctx}
	}
	info, err := s.c.PutObject(ctx, s.bucket, key, r, size, opts)
	if err != nil && conditional && classify(err) == classNotImplemented {
		s.noConditional.Store(true)
		return s.put(ctx, key, f, size, sha)
	}
	if err != nil {
		return "", fmt.Errorf("put %s: %w", key, wrapClass(err))
	}
	return info.ETag, nil
}

// abortStale aborts the incomplete multipart uploads of key, left behind
// by an attempt that died (crash, outage) before completing. It is called
// after the object was verified, when those parts are garbage; R2 would
// expire them after 7 days, other stores keep them until a lifecycle rule
// does.
func (s *store) abortStale(ctx context.Context, key string) error {
	if err := s.c.RemoveIncompleteUpload(ctx, s.bucket, key); err != nil {
		return fmt.Errorf("abort stale multipart uploads of %s: %w", key, wrapClass(err))
	}
	return nil
}

// contentSHA256 reads the object back and hashes it: the verification of
// last resort, for objects that carry neither a checksum nor our metadata.
func (s *store) contentSHA256(ctx context.Context, key string) (string, int64, error) {
	obj, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return "", 0, fmt.Errorf("get %s: %w", key, wrapClass(err))
	}
	defer func() { _ = obj.Close() }()
	h := sha256.New()
	n, err := io.Copy(h, obj)
	if err != nil {
		return "", 0, fmt.Errorf("get %s: %w", key, wrapClass(err))
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// probe checks that the store answers and accepts the credentials: a
// one-key listing under the prefix (a GET, so errors carry their code,
// unlike a HEAD).
func (s *store) probe(ctx context.Context) error {
	prefix := s.prefix
	if prefix != "" {
		prefix += "/"
	}
	// The first entry (or error) is all the probe needs.
	next, stop := iter.Pull(s.c.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, MaxKeys: 1}))
	defer stop()
	if oi, ok := next(); ok && oi.Err != nil {
		return fmt.Errorf("list bucket %s: %w", s.bucket, wrapClass(oi.Err))
	}
	return nil
}

// throttled rate-limits reads of an upload (UPLOAD_MAX_BANDWIDTH). It
// keeps io.ReaderAt and io.Seeker so minio-go still reads parts in
// parallel without buffering them.
type throttled struct {
	f   *os.File
	lim *rate.Limiter
	ctx context.Context
}

func (t *throttled) wait(n int) error {
	for n > 0 {
		k := min(n, t.lim.Burst())
		if err := t.lim.WaitN(t.ctx, k); err != nil {
			return fmt.Errorf("bandwidth limit: %w", err)
		}
		n -= k
	}
	return nil
}

func (t *throttled) Read(p []byte) (int, error) {
	p = p[:min(len(p), t.lim.Burst())]
	if err := t.wait(len(p)); err != nil {
		return 0, err
	}
	return t.f.Read(p)
}

func (t *throttled) ReadAt(p []byte, off int64) (int, error) {
	if err := t.wait(len(p)); err != nil {
		return 0, err
	}
	return t.f.ReadAt(p, off)
}

func (t *throttled) Seek(offset int64, whence int) (int64, error) {
	return t.f.Seek(offset, whence)
}
