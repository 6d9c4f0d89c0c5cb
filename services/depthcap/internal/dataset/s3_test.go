package dataset

import (
	"errors"
	"strings"
	"testing"

	"github.com/depthcap/depthcap/pkg/svc"
)

// TestS3Config proves --s3 refuses an incomplete or malformed bucket
// configuration before any request, names the variable, and never echoes a
// secret; and that object keys are <S3_PREFIX>/<path relative to DATA_DIR>
// as the uploader writes them. (No S3 server is run here: see
// docs/QUALITY.md.)
func TestS3Config(t *testing.T) {
	ok := S3Config{Endpoint: "https://acct.r2.cloudflarestorage.com", Bucket: "depthcap", AccessKeyID: "id", SecretAccessKey: "s3cr3t", Region: "auto"}
	for _, tc := range []struct {
		name string
		mut  func(*S3Config)
		bad  string // variable named in the error; "" means valid
	}{
		{"valid", func(*S3Config) {}, ""},
		{"http endpoint", func(c *S3Config) { c.Endpoint = "http://127.0.0.1:9000" }, ""},
		{"no endpoint", func(c *S3Config) { c.Endpoint = "" }, "S3_ENDPOINT"},
		{"endpoint with a path", func(c *S3Config) { c.Endpoint = "https://host/bucket" }, "S3_ENDPOINT"},
		{"endpoint without scheme", func(c *S3Config) { c.Endpoint = "host:9000" }, "S3_ENDPOINT"},
		{"endpoint with user info", func(c *S3Config) { c.Endpoint = "https://id:s3cr3t@host" }, "S3_ENDPOINT"},
		{"no bucket", func(c *S3Config) { c.Bucket = "" }, "S3_BUCKET"},
		{"no key id", func(c *S3Config) { c.AccessKeyID = "" }, "S3_ACCESS_KEY_ID"},
		{"no secret", func(c *S3Config) { c.SecretAccessKey = "" }, "S3_SECRET_ACCESS_KEY"},
		{"no region", func(c *S3Config) { c.Region = "" }, "S3_REGION"},
	} {
		c := ok
		tc.mut(&c)
		err := c.Validate()
		if tc.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var ce *svc.ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.bad) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: %v, want a config error naming %s without the secret", tc.name, err, tc.bad)
		}
	}
	for prefix, want := range map[string]string{"": "spot/orderbooks/X/2026-11-21.parquet", "archive/": "archive/spot/orderbooks/X/2026-11-21.parquet",
		"/a/b": "a/b/spot/orderbooks/X/2026-11-21.parquet"} {
		c := ok
		c.Prefix = prefix
		s, err := NewS3(c, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Key("spot/orderbooks/X/2026-11-21.parquet"); got != want {
			t.Errorf("prefix %q: key %q, want %q", prefix, got, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
