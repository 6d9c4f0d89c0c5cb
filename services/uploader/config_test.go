package uploader_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/pkg/svc/svctest"
	"github.com/depthcap/depthcap/services/uploader"
)

const testSecret = "s3cr3t-value-9d8f"

// Proves: invalid settings fail at start-up with an error that names the
// variable and what is allowed, and no error ever carries the secret key
// or credentials embedded in S3_ENDPOINT.
func TestConfigValidate(t *testing.T) {
	ok := map[string]string{
		"DATA_DIR":             t.TempDir(),
		"S3_ENDPOINT":          "https://0123456789abcdef.r2.cloudflarestorage.com",
		"S3_BUCKET":            "depthcap-data",
		"S3_ACCESS_KEY_ID":     "AKIDEXAMPLE",
		"S3_SECRET_ACCESS_KEY": testSecret,
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range ok {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "<unset>" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr error
		wantVar string // named in the error
		enabled bool
	}{
		{"valid R2", ok, nil, "", true},
		{"valid http, CRC32C, prefix with trailing slash", with("S3_ENDPOINT", "http://127.0.0.1:7070", "S3_CHECKSUM", "crc32c", "S3_PREFIX", "depthcap/v1/"), nil, "", true},
		{"disabled: no S3 settings", map[string]string{"DATA_DIR": t.TempDir()}, nil, "", false},
		{"bad endpoint scheme", with("S3_ENDPOINT", "ftp://example.com"), svc.ErrConfig, "S3_ENDPOINT", true},
		{"endpoint without scheme", with("S3_ENDPOINT", "example.com:9000"), svc.ErrConfig, "S3_ENDPOINT", true},
		{"endpoint with a path", with("S3_ENDPOINT", "https://example.com/bucket"), svc.ErrConfig, "S3_ENDPOINT", true},
		{"endpoint with credentials", with("S3_ENDPOINT", "https://user:"+testSecret+"@example.com"), svc.ErrConfig, "S3_ENDPOINT", true},
		{"endpoint missing", with("S3_ENDPOINT", "<unset>"), svc.ErrConfig, "S3_ENDPOINT", true},
		{"bucket missing", with("S3_BUCKET", "<unset>"), svc.ErrConfig, "S3_BUCKET", true},
		{"bucket invalid", with("S3_BUCKET", "Depthcap_Data"), svc.ErrConfig, "S3_BUCKET", true},
		{"access key missing", with("S3_ACCESS_KEY_ID", "<unset>"), svc.ErrConfig, "S3_ACCESS_KEY_ID", true},
		{"secret missing", with("S3_SECRET_ACCESS_KEY", "<unset>"), svc.ErrConfig, "S3_SECRET_ACCESS_KEY", true},
		{"only a secret", map[string]string{"DATA_DIR": t.TempDir(), "S3_SECRET_ACCESS_KEY": testSecret}, svc.ErrConfig, "S3_ENDPOINT", true},
		{"region empty", with("S3_REGION", ""), svc.ErrConfig, "S3_REGION", true},
		{"region invalid", with("S3_REGION", "US East"), svc.ErrConfig, "S3_REGION", true},
		{"prefix absolute", with("S3_PREFIX", "/data"), svc.ErrConfig, "S3_PREFIX", true},
		{"prefix dot-dot", with("S3_PREFIX", "a/../b"), svc.ErrConfig, "S3_PREFIX", true},
		{"prefix double slash", with("S3_PREFIX", "a//b"), svc.ErrConfig, "S3_PREFIX", true},
		{"checksum sha256", with("S3_CHECKSUM", "SHA256"), svc.ErrConfig, "S3_CHECKSUM", true},
		{"negative retention", with("LOCAL_RETENTION", "-1h"), svc.ErrConfig, "LOCAL_RETENTION", true},
		{"retention not a duration", with("LOCAL_RETENTION", "a week"), svc.ErrConfig, "LOCAL_RETENTION", true},
		{"concurrency 0", with("UPLOAD_CONCURRENCY", "0"), svc.ErrConfig, "UPLOAD_CONCURRENCY", true},
		{"concurrency too high", with("UPLOAD_CONCURRENCY", "1000"), svc.ErrConfig, "UPLOAD_CONCURRENCY", true},
		{"part size too small", with("UPLOAD_PART_SIZE", "4MiB"), svc.ErrConfig, "UPLOAD_PART_SIZE", true},
		{"part size unit", with("UPLOAD_PART_SIZE", "12 parsecs"), svc.ErrConfig, "UPLOAD_PART_SIZE", true},
		{"part concurrency 0", with("UPLOAD_PART_CONCURRENCY", "0"), svc.ErrConfig, "UPLOAD_PART_CONCURRENCY", true},
		{"bandwidth too low", with("UPLOAD_MAX_BANDWIDTH", "1000"), svc.ErrConfig, "UPLOAD_MAX_BANDWIDTH", true},
		{"retry min 0", with("UPLOAD_RETRY_MIN", "0s"), svc.ErrConfig, "UPLOAD_RETRY_MIN", true},
		{"retry max below min", with("UPLOAD_RETRY_MIN", "10s", "UPLOAD_RETRY_MAX", "1s"), svc.ErrConfig, "UPLOAD_RETRY_MAX", true},
		{"ack wait too short", with("UPLOAD_ACK_WAIT", "100ms"), svc.ErrConfig, "UPLOAD_ACK_WAIT", true},
		{"attempt timeout too short", with("UPLOAD_ATTEMPT_TIMEOUT", "1ms"), svc.ErrConfig, "UPLOAD_ATTEMPT_TIMEOUT", true},
		{"scan interval 0", with("UPLOAD_SCAN_INTERVAL", "0s"), svc.ErrConfig, "UPLOAD_SCAN_INTERVAL", true},
		{"consumer name with a dot", with("UPLOAD_CONSUMER", "up.loader"), svc.ErrConfig, "UPLOAD_CONSUMER", true},
		{"typo under an owned prefix", with("UPLOAD_CONCURENCY", "8"), svc.ErrConfig, "UPLOAD_CONCURENCY", true},
		{"typo under S3_", with("S3_SECRET_KEY", testSecret), svc.ErrConfig, "S3_SECRET_KEY", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svctest.ClearEnv(t, &uploader.Config{})
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var cfg uploader.Config
			err := svc.Load(&cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Load = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.wantVar) {
					t.Errorf("error %q does not name %s", err, tt.wantVar)
				}
				if strings.Contains(err.Error(), testSecret) {
					t.Errorf("error shows the secret: %q", err)
				}
				return
			}
			if cfg.Enabled() != tt.enabled {
				t.Errorf("Enabled() = %v, want %v", cfg.Enabled(), tt.enabled)
			}
		})
	}
}

// Proves: the defaults are the documented ones (R2's region, the
// full-object checksum R2 supports for multipart uploads, keep files).
func TestConfigDefaults(t *testing.T) {
	cfg := loadConfig(t, map[string]string{"DATA_DIR": t.TempDir(), "S3_ENDPOINT": "https://a.r2.cloudflarestorage.com", "S3_BUCKET": "bkt", "S3_ACCESS_KEY_ID": "k", "S3_SECRET_ACCESS_KEY": testSecret})
	got := fmt.Sprintf("%s %s %v %d %s %d %v %v %v", cfg.Region, cfg.Checksum, cfg.LocalRetention, cfg.Concurrency, cfg.PartSize, cfg.PartConcurrency, cfg.RetryMin, cfg.RetryMax, cfg.AckWait)
	if want := "auto CRC64NVME 0s 4 16MiB 4 1s 2m0s 1m0s"; got != want {
		t.Errorf("defaults = %q, want %q", got, want)
	}
	cc := cfg.ConsumerConfig()
	if cc.MaxAckPending != cfg.Concurrency || cc.AckWait != cfg.AckWait || cc.MaxDeliver != -1 {
		t.Errorf("consumer config %+v does not follow UPLOAD_CONCURRENCY/UPLOAD_ACK_WAIT", cc)
	}
}

// Proves: the keys never leave the process through formatting, JSON or a
// logged config.
func TestSecretsNeverFormatted(t *testing.T) {
	cfg := uploader.Config{Settings: uploader.Settings{Bucket: "b", AccessKeyID: "AKIDVALUE123", SecretAccessKey: testSecret}}
	core, logs := observer.New(zapcore.DebugLevel)
	zap.New(core).Info("config", zap.Any("cfg", cfg), zap.Stringer("secret", cfg.SecretAccessKey))
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	e := logs.All()[0]
	buf, err := enc.EncodeEntry(e.Entry, e.Context)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), string(js), buf.String()} {
		if strings.Contains(s, testSecret) || strings.Contains(s, "AKIDVALUE123") {
			t.Errorf("a key leaks: %s", s)
		}
	}
	if cfg.SecretAccessKey.Value() != testSecret {
		t.Error("Value() does not return the secret")
	}
}

// Proves: the README's settings table documents every variable the
// uploader reads itself (the shared ones live in the repository README).
func TestReadmeListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	names := append([]string{"DATA_DIR"}, svc.VarNames(&uploader.Settings{})...)
	for _, name := range names {
		if !strings.Contains(readme, "| `"+name+"` |") {
			t.Errorf("README.md has no table row for %s", name)
		}
	}
}
