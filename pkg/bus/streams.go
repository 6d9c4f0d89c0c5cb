package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
)

// StreamConfig sizes the streams depthcap provisions.
type StreamConfig struct {
	MaxAge      time.Duration `envconfig:"NATS_STREAM_MAX_AGE" default:"72h" desc:"MARKETDATA retention by age: the replay horizon after a writer outage"`
	MaxBytes    int64         `envconfig:"NATS_STREAM_MAX_BYTES" default:"-1" desc:"MARKETDATA retention by size in bytes; -1 is unlimited (the server's store limit still applies)"`
	Duplicates  time.Duration `envconfig:"NATS_DUPLICATES_WINDOW" default:"2m" desc:"dedup window for Nats-Msg-Id; costs server memory per message in the window"`
	Replicas    int           `envconfig:"NATS_STREAM_REPLICAS" default:"1" desc:"stream replicas: 1 on a single box, 3 in a cluster"`
	FilesMaxAge time.Duration `envconfig:"NATS_FILES_MAX_AGE" default:"720h" desc:"how long an unconsumed 'file sealed' message is kept in FILES"`
	DLQMaxAge   time.Duration `envconfig:"NATS_DLQ_MAX_AGE" default:"168h" desc:"retention of quarantined input in DLQ"`
	DLQMaxBytes int64         `envconfig:"NATS_DLQ_MAX_BYTES" default:"1073741824" desc:"size limit of DLQ in bytes"`
	Provision   bool          `envconfig:"NATS_PROVISION" default:"true" desc:"create or update the streams at start-up; false for least-privilege users that only publish"`
}

// Validate checks the stream settings.
func (c StreamConfig) Validate() error {
	if c.MaxAge <= 0 {
		return svc.Invalid("NATS_STREAM_MAX_AGE", c.MaxAge, "a duration > 0, e.g. 72h")
	}
	if c.MaxBytes == 0 || c.MaxBytes < -1 {
		return svc.Invalid("NATS_STREAM_MAX_BYTES", c.MaxBytes, "-1 (unlimited) or a byte count > 0")
	}
	if c.Duplicates < 100*time.Millisecond {
		return svc.Invalid("NATS_DUPLICATES_WINDOW", c.Duplicates, "a duration >= 100ms (the server's minimum) and <= NATS_STREAM_MAX_AGE, e.g. 2m")
	}
	if c.Duplicates > c.MaxAge {
		return svc.Invalid("NATS_DUPLICATES_WINDOW", c.Duplicates, "a duration <= NATS_STREAM_MAX_AGE (%s)", c.MaxAge)
	}
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		return svc.Invalid("NATS_STREAM_REPLICAS", c.Replicas, "1, 3 or 5")
	}
	if c.FilesMaxAge <= 0 {
		return svc.Invalid("NATS_FILES_MAX_AGE", c.FilesMaxAge, "a duration > 0")
	}
	if c.DLQMaxAge <= 0 {
		return svc.Invalid("NATS_DLQ_MAX_AGE", c.DLQMaxAge, "a duration > 0")
	}
	if c.DLQMaxBytes == 0 || c.DLQMaxBytes < -1 {
		return svc.Invalid("NATS_DLQ_MAX_BYTES", c.DLQMaxBytes, "-1 (unlimited) or a byte count > 0")
	}
	return nil
}

// StreamConfigs returns the JetStream configurations of MARKETDATA, FILES
// and DLQ.
func (c StreamConfig) StreamConfigs() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        md.StreamMarketData,
			Description: "depthcap raw market data: envelopes of exchange frames and gap records",
			Subjects:    []string{md.MarketDataFilter},
			SubjectTransform: &jetstream.SubjectTransformConfig{
				Source:      md.PartitionTransform[0],
				Destination: md.PartitionTransform[1],
			},
			Retention:  jetstream.LimitsPolicy,
			Storage:    jetstream.FileStorage,
			Discard:    jetstream.DiscardOld,
			MaxAge:     c.MaxAge,
			MaxBytes:   c.MaxBytes,
			Duplicates: c.Duplicates,
			Replicas:   c.Replicas,
		},
		{
			Name:        md.StreamFiles,
			Description: "depthcap sealed files waiting for upload (work queue)",
			Subjects:    []string{md.FilesFilter},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Discard:     jetstream.DiscardNew,
			MaxAge:      c.FilesMaxAge,
			Duplicates:  10 * time.Minute,
			Replicas:    c.Replicas,
		},
		{
			Name:        md.StreamDLQ,
			Description: "depthcap quarantined input: malformed frames and impossible values",
			Subjects:    []string{md.DLQFilter},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Discard:     jetstream.DiscardOld,
			MaxAge:      c.DLQMaxAge,
			MaxBytes:    c.DLQMaxBytes,
			Replicas:    c.Replicas,
		},
	}
}

// EnsureStreams creates or updates MARKETDATA, FILES and DLQ. It is
// idempotent. With Provision off it only checks that they exist. It waits
// for the connection (retrying) until ctx ends.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, c StreamConfig) error {
	for _, sc := range c.StreamConfigs() {
		if err := retry(ctx, func(ctx context.Context) error { return ensure(ctx, js, sc, c.Provision) }); err != nil {
			return err
		}
	}
	return nil
}

func ensure(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig, provision bool) error {
	if !provision {
		// Another service (the writer, or an operator) creates the
		// streams: wait for them rather than exit.
		if _, err := js.Stream(ctx, sc.Name); err != nil {
			return fmt.Errorf("stream %s (NATS_PROVISION=false: waiting for it to be created): %w", sc.Name, errRetry{err})
		}
		return nil
	}
	if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
		return fmt.Errorf("create or update stream %s: %w", sc.Name, err)
	}
	return nil
}

// ErrPermanent marks errors that retrying cannot fix.
var ErrPermanent = errors.New("permanent")

// errRetry marks an error as worth retrying even if it is an API error.
type errRetry struct{ err error }

func (e errRetry) Error() string { return e.err.Error() }
func (e errRetry) Unwrap() error { return e.err }

// retry runs fn until it succeeds, fails permanently, or ctx ends.
// Connection-level errors (no responders while NATS is starting, timeouts)
// are retried with backoff; API errors (bad config, permissions) are not.
func retry(ctx context.Context, fn func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		var apiErr *jetstream.APIError
		var again errRetry
		if !errors.As(err, &again) && (errors.As(err, &apiErr) || errors.Is(err, ErrPermanent)) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-time.After(backoff(attempt)):
		}
	}
}
