package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/depthcap/depthcap/pkg/svc"
)

// S3Config is the bucket to read: the uploader's S3_* variables (the
// uploader writes <S3_PREFIX>/<path relative to DATA_DIR>).
type S3Config struct {
	Endpoint        string `envconfig:"S3_ENDPOINT" desc:"S3 API URL; the scheme decides TLS"`
	Bucket          string `envconfig:"S3_BUCKET" desc:"bucket name"`
	Prefix          string `envconfig:"S3_PREFIX" desc:"key prefix of the files"`
	AccessKeyID     string `envconfig:"S3_ACCESS_KEY_ID" desc:"access key id (never logged)"`
	SecretAccessKey string `envconfig:"S3_SECRET_ACCESS_KEY" desc:"secret access key (never logged)"`
	Region          string `envconfig:"S3_REGION" default:"auto" desc:"signing region; R2 expects auto"`
}

// Validate checks that the bucket can be addressed; errors name the
// variable and never contain a secret.
func (c *S3Config) Validate() error {
	if _, _, err := c.endpoint(); err != nil {
		return err
	}
	switch {
	case c.Bucket == "":
		return svc.Invalid("S3_BUCKET", "", "a bucket name (required with --s3)")
	case c.AccessKeyID == "":
		return svc.Invalid("S3_ACCESS_KEY_ID", "", "the access key id (required with --s3)")
	case c.SecretAccessKey == "":
		return svc.Invalid("S3_SECRET_ACCESS_KEY", "", "the secret access key (required with --s3)")
	case c.Region == "":
		return svc.Invalid("S3_REGION", "", "a region name: auto for R2, e.g. us-east-1 elsewhere")
	}
	return nil
}

func (c *S3Config) endpoint() (host string, secure bool, err error) {
	const allowed = "an http:// or https:// URL with a host and no path (required with --s3)"
	u, perr := url.Parse(c.Endpoint)
	if c.Endpoint == "" || perr != nil || u.Host == "" || u.User != nil || strings.Trim(u.Path, "/") != "" {
		shown := c.Endpoint
		if perr == nil && u.User != nil {
			shown = "[URL with user info]"
		}
		return "", false, svc.Invalid("S3_ENDPOINT", shown, allowed)
	}
	switch u.Scheme {
	case "https":
		return u.Host, true, nil
	case "http":
		return u.Host, false, nil
	}
	return "", false, svc.Invalid("S3_ENDPOINT", c.Endpoint, allowed)
}

// S3 is a Store over a bucket. It downloads each object it opens into a
// private temporary directory (removed by Close) and reads it from there:
// Parquet needs random access, and a local copy makes every row group a
// plain file read instead of a ranged GET.
type S3 struct {
	c      *minio.Client
	bucket string
	prefix string // without trailing slash; "" at the bucket root
	tmp    string

	mu    sync.Mutex
	fetch map[string]error
}

// NewS3 returns a Store over the bucket of cfg, downloading into a new
// directory under tmpRoot ("" means the system temp directory).
func NewS3(cfg S3Config, tmpRoot string) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, secure, _ := cfg.endpoint()
	c, err := minio.New(host, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure: secure,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client %s: %w", host, err)
	}
	tmp, err := os.MkdirTemp(tmpRoot, "depthcap-s3-")
	if err != nil {
		return nil, fmt.Errorf("s3 download dir: %w", err)
	}
	return &S3{c: c, bucket: cfg.Bucket, prefix: strings.Trim(cfg.Prefix, "/"), tmp: tmp, fetch: map[string]error{}}, nil
}

// Key is the object key of a path relative to DATA_DIR.
func (s *S3) Key(rel string) string {
	if s.prefix == "" {
		return rel
	}
	return s.prefix + "/" + rel
}

func (s *S3) String() string { return "s3://" + s.bucket + "/" + s.prefix }

// List implements Store.
func (s *S3) List(ctx context.Context, dir, prefix string) ([]string, error) {
	keyDir := s.Key(dir) + "/"
	var out []string
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: keyDir + prefix}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.bucket, keyDir+prefix, obj.Err)
		}
		name := strings.TrimPrefix(obj.Key, keyDir)
		if name == "" || strings.Contains(name, "/") {
			continue
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("list s3://%s/%s: %w", s.bucket, keyDir+prefix, fs.ErrNotExist)
	}
	sort.Strings(out)
	return out, nil
}

// local downloads rel once and returns its local path.
func (s *S3) local(ctx context.Context, rel string) (string, error) {
	p := filepath.Join(s.tmp, filepath.FromSlash(path.Clean("/"+rel)))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err, ok := s.fetch[rel]; ok {
		return p, err
	}
	err := s.c.FGetObject(ctx, s.bucket, s.Key(rel), p, minio.GetObjectOptions{})
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && er.StatusCode == 404 {
			err = fs.ErrNotExist
		}
		err = fmt.Errorf("get s3://%s/%s: %w", s.bucket, s.Key(rel), err)
	}
	s.fetch[rel] = err
	return p, err
}

// Open implements Store.
func (s *S3) Open(ctx context.Context, rel string) (Object, error) {
	p, err := s.local(ctx, rel)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", rel, err)
	}
	return f, nil
}

// ReadFile implements Store.
func (s *S3) ReadFile(ctx context.Context, rel string) ([]byte, error) {
	p, err := s.local(ctx, rel)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, err)
	}
	return b, nil
}

// Close removes the downloaded files.
func (s *S3) Close() error { return os.RemoveAll(s.tmp) }

var _ io.Closer = (*S3)(nil)
