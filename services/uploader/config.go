package uploader

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/svc"
)

// Config is the uploader service's configuration: the shared runtime and
// NATS settings, DATA_DIR, and the uploader's own Settings.
type Config struct {
	svc.Base
	bus.Config

	DataDir string `envconfig:"DATA_DIR" default:"./data" desc:"root of the sealed files: <market>/<kind_dir>/<SYMBOL>/<file>; the upload ledger lives in DATA_DIR/.uploader"`

	Settings
}

// Settings are the uploader's own variables (S3_*, UPLOAD_*,
// LOCAL_RETENTION). The all-in-one embeds them in its configuration next
// to its own runtime, NATS and DATA_DIR settings, and builds a Config
// from the parts. The uploader is off when none of S3_ENDPOINT,
// S3_BUCKET, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY is set (see
// Enabled); when any of them is set, all four are required.
type Settings struct {
	Endpoint        string `envconfig:"S3_ENDPOINT" desc:"S3 API URL; the scheme decides TLS (https://<account>.r2.cloudflarestorage.com for R2); empty with the other S3_ settings turns the uploader off"`
	Bucket          string `envconfig:"S3_BUCKET" desc:"bucket name"`
	AccessKeyID     Secret `envconfig:"S3_ACCESS_KEY_ID" desc:"access key id (never logged)"`
	SecretAccessKey Secret `envconfig:"S3_SECRET_ACCESS_KEY" desc:"secret access key (never logged)"`
	Region          string `envconfig:"S3_REGION" default:"auto" desc:"signing region; R2 expects auto"`
	Prefix          string `envconfig:"S3_PREFIX" desc:"key prefix: objects are <S3_PREFIX>/<path relative to DATA_DIR>; empty puts them at the bucket root"`
	Checksum        string `envconfig:"S3_CHECKSUM" default:"CRC64NVME" desc:"full-object checksum sent with every upload and compared on verification: CRC64NVME, CRC32C or CRC32 (R2 supports FULL_OBJECT on multipart uploads for CRC64NVME only)"`

	LocalRetention time.Duration `envconfig:"LOCAL_RETENTION" default:"0" desc:"how long a file stays in DATA_DIR after its object was verified, by file age; 0 keeps files forever"`

	Concurrency     int           `envconfig:"UPLOAD_CONCURRENCY" default:"4" desc:"files uploaded at the same time; also the consumer's MaxAckPending"`
	PartSize        ByteSize      `envconfig:"UPLOAD_PART_SIZE" default:"16MiB" desc:"multipart part size; larger files are uploaded in parts (5MiB-5GiB)"`
	PartConcurrency int           `envconfig:"UPLOAD_PART_CONCURRENCY" default:"4" desc:"parts of one file uploaded at the same time"`
	MaxBandwidth    ByteSize      `envconfig:"UPLOAD_MAX_BANDWIDTH" default:"0" desc:"upload rate limit in bytes per second over all uploads, e.g. 20MiB; 0 is unlimited"`
	RetryMin        time.Duration `envconfig:"UPLOAD_RETRY_MIN" default:"1s" desc:"first retry backoff; it doubles per attempt with full jitter"`
	RetryMax        time.Duration `envconfig:"UPLOAD_RETRY_MAX" default:"2m" desc:"backoff cap; a file is retried until it is uploaded, however long the store is down"`
	AttemptTimeout  time.Duration `envconfig:"UPLOAD_ATTEMPT_TIMEOUT" default:"30m" desc:"time limit of one upload attempt (stat, put, verify) of one file"`
	AckWait         time.Duration `envconfig:"UPLOAD_ACK_WAIT" default:"1m" desc:"FILES consumer AckWait; a message being worked on is kept in progress every AckWait/3"`
	ScanInterval    time.Duration `envconfig:"UPLOAD_SCAN_INTERVAL" default:"10m" desc:"period of the DATA_DIR scan that queues files without a verified upload and applies LOCAL_RETENTION (it also runs at start-up)"`
	Consumer        string        `envconfig:"UPLOAD_CONSUMER" default:"uploader" desc:"durable name of the FILES consumer, shared by uploader replicas"`
}

// Secret is a configuration value that never appears in logs, errors or
// formatted output.
type Secret string

const redacted = "[REDACTED]"

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString hides the value from %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// MarshalText hides the value from encoders (JSON, zap reflection).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Value returns the secret itself, for the S3 client only.
func (s Secret) Value() string { return string(s) }

// Enabled reports whether any S3 setting is present. Without S3 settings
// the uploader is off: Run logs that once and idles until it is stopped,
// and New returns ErrDisabled.
func (c *Settings) Enabled() bool {
	return c.Endpoint != "" || c.Bucket != "" || c.AccessKeyID != "" || c.SecretAccessKey != ""
}

// OwnedPrefixes makes svc.Load reject unknown S3_* and UPLOAD_* variables,
// so a typo does not silently fall back to a default.
func (c *Config) OwnedPrefixes() []string { return c.Settings.OwnedPrefixes() }

// OwnedPrefixes are the variable prefixes the uploader owns.
func (c *Settings) OwnedPrefixes() []string { return []string{"S3_", "UPLOAD_"} }

// Validate checks every setting; errors name the variable and the allowed
// values and never contain a secret.
func (c *Config) Validate() error {
	if err := c.Base.Validate(); err != nil {
		return err
	}
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if c.DataDir == "" {
		return svc.Invalid("DATA_DIR", c.DataDir, "a directory path")
	}
	return c.Settings.Validate()
}

// Validate checks the uploader's own settings.
func (c *Settings) Validate() error {
	if c.LocalRetention < 0 {
		return svc.Invalid("LOCAL_RETENTION", c.LocalRetention, "a duration >= 0 (0 keeps files forever), e.g. 168h")
	}
	if !c.Enabled() {
		return nil
	}
	if err := c.validateS3(); err != nil {
		return err
	}
	return c.validateUpload()
}

func (c *Settings) validateS3() error {
	if _, err := ParseEndpoint(c.Endpoint); err != nil {
		return err
	}
	if c.Bucket == "" {
		return svc.Invalid("S3_BUCKET", "", "a bucket name (required when any S3_ setting is set)")
	}
	if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		return svc.Invalid("S3_BUCKET", c.Bucket, "3-63 characters: lower-case letters, digits, '.' and '-', starting and ending with a letter or digit")
	}
	if c.AccessKeyID == "" {
		return svc.Invalid("S3_ACCESS_KEY_ID", "", "the access key id (required when any S3_ setting is set)")
	}
	if c.SecretAccessKey == "" {
		return svc.Invalid("S3_SECRET_ACCESS_KEY", "", "the secret access key (required when any S3_ setting is set)")
	}
	if c.Region == "" || strings.ContainsFunc(c.Region, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-'
	}) {
		return svc.Invalid("S3_REGION", c.Region, "a region name of lower-case letters, digits and '-': auto for R2, e.g. us-east-1 elsewhere")
	}
	if _, err := cleanPrefix(c.Prefix); err != nil {
		return err
	}
	if _, err := ParseChecksum(c.Checksum); err != nil {
		return err
	}
	return nil
}

func (c *Settings) validateUpload() error {
	switch {
	case c.Concurrency < 1 || c.Concurrency > 256:
		return svc.Invalid("UPLOAD_CONCURRENCY", c.Concurrency, "an integer from 1 to 256")
	case c.PartSize < minPartSize || c.PartSize > maxPartSize:
		return svc.Invalid("UPLOAD_PART_SIZE", c.PartSize, "a size from 5MiB to 5GiB, e.g. 16MiB")
	case c.PartConcurrency < 1 || c.PartConcurrency > 64:
		return svc.Invalid("UPLOAD_PART_CONCURRENCY", c.PartConcurrency, "an integer from 1 to 64")
	case c.MaxBandwidth < 0 || c.MaxBandwidth > 0 && c.MaxBandwidth < 64*KiB:
		return svc.Invalid("UPLOAD_MAX_BANDWIDTH", c.MaxBandwidth, "0 (unlimited) or a rate >= 64KiB per second, e.g. 20MiB")
	case c.RetryMin <= 0:
		return svc.Invalid("UPLOAD_RETRY_MIN", c.RetryMin, "a duration > 0, e.g. 1s")
	case c.RetryMax < c.RetryMin:
		return svc.Invalid("UPLOAD_RETRY_MAX", c.RetryMax, "a duration >= UPLOAD_RETRY_MIN (%s), e.g. 2m", c.RetryMin)
	case c.AttemptTimeout < time.Second:
		return svc.Invalid("UPLOAD_ATTEMPT_TIMEOUT", c.AttemptTimeout, "a duration >= 1s, e.g. 30m")
	case c.AckWait < time.Second:
		return svc.Invalid("UPLOAD_ACK_WAIT", c.AckWait, "a duration >= 1s, e.g. 1m")
	case c.ScanInterval < 10*time.Millisecond:
		return svc.Invalid("UPLOAD_SCAN_INTERVAL", c.ScanInterval, "a duration >= 10ms, e.g. 10m")
	case c.Consumer == "" || strings.ContainsAny(c.Consumer, " .*>\t\r\n/\\"):
		return svc.Invalid("UPLOAD_CONSUMER", c.Consumer, "a durable name without spaces, '.', '*', '>', '/' or '\\'")
	}
	return nil
}

// Endpoint is a parsed S3_ENDPOINT.
type Endpoint struct {
	Host   string // host[:port], as minio.New wants it
	Secure bool   // https
}

// ParseEndpoint parses S3_ENDPOINT: http:// or https://, a host, and
// nothing else. Credentials in the URL are refused (and not echoed).
func ParseEndpoint(s string) (Endpoint, error) {
	const allowed = "an http:// or https:// URL with a host and no path, e.g. https://<account>.r2.cloudflarestorage.com"
	if s == "" {
		return Endpoint{}, svc.Invalid("S3_ENDPOINT", "", "%s (required when any S3_ setting is set)", allowed)
	}
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, svc.Invalid("S3_ENDPOINT", redactURL(s), allowed)
	}
	if u.User != nil {
		return Endpoint{}, svc.Invalid("S3_ENDPOINT", redactURL(s), "a URL without user info: put the keys in S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY")
	}
	switch u.Scheme {
	case "http", "https":
	default:
		return Endpoint{}, svc.Invalid("S3_ENDPOINT", s, "%s (scheme %q is not http or https)", allowed, u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return Endpoint{}, svc.Invalid("S3_ENDPOINT", s, allowed)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return Endpoint{}, svc.Invalid("S3_ENDPOINT", s, "%s (put the bucket in S3_BUCKET and key prefixes in S3_PREFIX)", allowed)
	}
	return Endpoint{Host: u.Host, Secure: u.Scheme == "https"}, nil
}

// redactURL hides everything between "://" and the last '@'.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if at := strings.LastIndexByte(rest, '@'); ok && at >= 0 {
		return scheme + "://" + redacted + rest[at:]
	}
	if !ok && strings.Contains(s, "@") {
		return redacted
	}
	return s
}

// cleanPrefix validates S3_PREFIX and drops a trailing '/'.
func cleanPrefix(p string) (string, error) {
	const allowed = "empty, or key segments separated by '/', without a leading '/', empty, '.' or '..' segments, at most 512 bytes, e.g. depthcap/v1"
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return "", nil
	}
	if len(p) > 512 || !utf8.ValidString(p) || strings.HasPrefix(p, "/") || path.Clean(p) != p || strings.ContainsAny(p, "\\\x00") {
		return "", svc.Invalid("S3_PREFIX", p, allowed)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." || seg == "" {
			return "", svc.Invalid("S3_PREFIX", p, allowed)
		}
	}
	return p, nil
}

// ParseChecksum maps S3_CHECKSUM to the minio-go full-object checksum type.
func ParseChecksum(s string) (minio.ChecksumType, error) {
	switch strings.ToUpper(s) {
	case "CRC64NVME":
		return minio.ChecksumCRC64NVME, nil
	case "CRC32C":
		return minio.ChecksumFullObjectCRC32C, nil
	case "CRC32":
		return minio.ChecksumFullObjectCRC32, nil
	}
	return minio.ChecksumNone, svc.Invalid("S3_CHECKSUM", s, "CRC64NVME, CRC32C or CRC32 (full-object checksums; SHA-256 has no full-object form for multipart uploads)")
}

// ByteSize is a size in bytes read from "16MiB", "64MB", "1GiB", "512KiB"
// or a plain number of bytes.
type ByteSize int64

// Sizes.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30

	minPartSize = 5 * MiB
	maxPartSize = 5 * GiB
)

// Decode implements envconfig.Decoder.
func (b *ByteSize) Decode(s string) error {
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ParseByteSize parses a number with an optional unit: B, K/KB/KiB,
// M/MB/MiB, G/GB/GiB (binary units: 1K = 1KiB = 1024 bytes).
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit (KiB, MiB, GiB)", s)
	}
	var n int64
	for _, d := range t[:i] {
		if n > (1<<62)/10 {
			return 0, fmt.Errorf("size %q: too large", s)
		}
		n = n*10 + int64(d-'0')
	}
	var mult int64
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
		mult = 1
	case "k", "kb", "kib":
		mult = int64(KiB)
	case "m", "mb", "mib":
		mult = int64(MiB)
	case "g", "gb", "gib":
		mult = int64(GiB)
	default:
		return 0, fmt.Errorf("size %q: unknown unit (want B, KiB, MiB or GiB)", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return ByteSize(n * mult), nil
}

// String prints the size in the largest exact binary unit.
func (b ByteSize) String() string {
	switch {
	case b != 0 && b%GiB == 0:
		return fmt.Sprintf("%dGiB", b/GiB)
	case b != 0 && b%MiB == 0:
		return fmt.Sprintf("%dMiB", b/MiB)
	case b != 0 && b%KiB == 0:
		return fmt.Sprintf("%dKiB", b/KiB)
	}
	return fmt.Sprintf("%d", int64(b))
}
