package bus

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/md"
)

// The tests in this file run a real nats-server with the configurations in
// deploy/nats and prove that each depthcap user can do what its service
// needs and nothing the runbook says it cannot: deploy/nats/accounts.conf
// is the contract, these tests are its proof.
//
// A denied publish (and so a denied JetStream API request) is not answered:
// the server sends "-ERR Permissions Violation for Publish to <subject>" to
// the client, nats.go reports it to the connection's error handler as
// nats.ErrPermissionViolation, and the request times out. Each denial is
// asserted by both: the operation fails, and the server reported a
// violation for exactly the subject the operation uses.

// permPasswords are the test values of the variables deploy/nats reads.
var permPasswords = map[string]string{
	"NATS_ADMIN_PASSWORD":       "pAdminTest1",
	"NATS_INGEST_PASSWORD":      "pIngestTest2",
	"NATS_SNAPSHOTTER_PASSWORD": "pSnapTest3",
	"NATS_WRITER_PASSWORD":      "pWriterTest4",
	"NATS_UPLOADER_PASSWORD":    "pUploaderTest5",
	"NATS_LEAF_PASSWORD":        "pLeafTest6",
	"NATS_SYS_PASSWORD":         "pSysTest7",
}

var permUserPassword = map[string]string{
	"admin":       "NATS_ADMIN_PASSWORD",
	"ingest":      "NATS_INGEST_PASSWORD",
	"snapshotter": "NATS_SNAPSHOTTER_PASSWORD",
	"writer":      "NATS_WRITER_PASSWORD",
	"uploader":    "NATS_UPLOADER_PASSWORD",
}

// deniedWait bounds a request that the server will never answer.
const deniedWait = time.Second

// permSetEnv puts the passwords into the environment nats-server inherits.
func permSetEnv(t *testing.T) {
	t.Helper()
	for k, v := range permPasswords {
		t.Setenv(k, v)
	}
}

// permDeployDir returns <repository>/deploy/nats, located from this file.
func permDeployDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "nats")
	if _, err := os.Stat(filepath.Join(dir, "single.conf")); err != nil {
		t.Fatalf("deploy/nats not found from %s: %v", file, err)
	}
	return dir
}

// permStreams is the stream configuration the services use, with the
// given provisioning mode.
func permStreams(provision bool) StreamConfig {
	return StreamConfig{MaxAge: 72 * time.Hour, MaxBytes: -1, Duplicates: 2 * time.Minute, Replicas: 1,
		FilesMaxAge: 720 * time.Hour, DLQMaxAge: 168 * time.Hour, DLQMaxBytes: 1 << 30, Provision: provision}
}

// permShardFilters are the consumer filters of writer shard i of n, as
// services/writer builds them (pkg does not import services).
func permShardFilters(i, n int) []string {
	var f []string
	for p := 0; p < md.Partitions; p++ {
		if p%n == i {
			f = append(f, md.PartitionFilter(p))
		}
	}
	return f
}

// permClient is a connection as one user, with the asynchronous errors the
// server sent it.
type permClient struct {
	user string
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

func permConnect(t *testing.T, url, user string) *permClient {
	t.Helper()
	c := &permClient{user: user, errs: make(chan error, 256)}
	nc, err := nats.Connect(url,
		nats.Name("permissions-test-"+user),
		nats.UserInfo(user, permPasswords[permUserPassword[user]]),
		nats.Timeout(5*time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// wantViolation waits for the server's permissions violation on subject.
// kind is "Publish" or "Subscription".
func (c *permClient) wantViolation(t *testing.T, op, kind, subject string) {
	t.Helper()
	want := fmt.Sprintf("%s to %q", kind, subject)
	timeout := time.After(5 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
				return
			}
			t.Logf("%s as %s: other async error while waiting: %v", op, c.user, err)
		case <-timeout:
			t.Fatalf("%s as %s: the server reported no permissions violation for %s", op, c.user, want)
		}
	}
}

// wantDenied checks that a request failed because it was never answered
// and that the server refused to let the user publish to subject.
func (c *permClient) wantDenied(t *testing.T, op string, err error, subject string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s as %s: allowed, want a permissions violation on %s", op, c.user, subject)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("%s as %s: %v; want a request timeout after a permissions violation on %s", op, c.user, err, subject)
	}
	c.wantViolation(t, op, "Publish", subject)
}

// wantPublishDenied publishes to subject (core NATS) and checks the
// violation.
func (c *permClient) wantPublishDenied(t *testing.T, subject string) {
	t.Helper()
	if err := c.nc.Publish(subject, []byte("x")); err != nil {
		t.Fatalf("publish %s as %s: %v", subject, c.user, err)
	}
	c.wantViolation(t, "publish "+subject, "Publish", subject)
}

// wantSubscribeDenied subscribes to subject and checks the violation.
func (c *permClient) wantSubscribeDenied(t *testing.T, subject string) {
	t.Helper()
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		t.Fatalf("subscribe %s as %s: %v", subject, c.user, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	c.wantViolation(t, "subscribe "+subject, "Subscription", subject)
}

// noViolations checks, after a round trip to the server, that nothing the
// user did so far was refused.
func (c *permClient) noViolations(t *testing.T) {
	t.Helper()
	if err := c.nc.Flush(); err != nil {
		t.Fatalf("flush as %s: %v", c.user, err)
	}
	time.Sleep(50 * time.Millisecond)
	for {
		select {
		case err := <-c.errs:
			t.Fatalf("as %s: unexpected async error: %v", c.user, err)
		default:
			return
		}
	}
}

func permCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// permPublishAsync publishes one message through the services' bounded
// async publisher (PublishMsgAsync with Nats-Msg-Id, ack on _INBOX) and
// returns its ack.
func permPublishAsync(t *testing.T, c *permClient, subject, msgID string, data []byte) jetstream.PubAck {
	t.Helper()
	pub, err := NewPublisher(c.nc, PublisherConfig{MaxBytes: 1 << 20, MaxPending: 16, AckTimeout: 5 * time.Second}, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	acks := make(chan jetstream.PubAck, 1)
	m := pub.NewMsg()
	m.Buf = append(append(m.Buf[:0], data...), msgID...)
	m.Set(subject, len(data))
	m.OnDone = func(a *jetstream.PubAck) { acks <- *a }
	if err := pub.Enqueue(m); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(permCtx(t, 10*time.Second)); err != nil {
		t.Fatalf("async publish %s as %s: %v", subject, c.user, err)
	}
	// OnDone runs on the ack goroutine, just after the queue empties.
	select {
	case a := <-acks:
		return a
	case <-time.After(5 * time.Second):
		t.Fatalf("async publish %s as %s: no ack", subject, c.user)
		return jetstream.PubAck{}
	}
}

// permNext reads the next message of a consumer.
func permNext(t *testing.T, c *permClient, cons jetstream.Consumer, opts ...jetstream.PullMessagesOpt) jetstream.Msg {
	t.Helper()
	it, err := cons.Messages(opts...)
	if err != nil {
		t.Fatalf("messages as %s: %v", c.user, err)
	}
	defer it.Stop()
	msg, err := it.Next(jetstream.NextMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("next message as %s: %v", c.user, err)
	}
	return msg
}

func TestPermissionsSingleBox(t *testing.T) {
	permSetEnv(t)
	confDir := permConfs(t, nil)
	url := permRunServer(t, "-c", filepath.Join(confDir, "single.conf"))

	admin := permConnect(t, url, "admin")
	if err := EnsureStreams(permCtx(t, 20*time.Second), admin.js, permStreams(true)); err != nil {
		t.Fatalf("admin provisions the streams: %v", err)
	}
	// A consumer the others try to read from.
	if _, err := admin.js.CreateConsumer(permCtx(t, 5*time.Second), md.StreamMarketData,
		jetstream.ConsumerConfig{Durable: "probe", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}

	const (
		diffSubject = "md.binance.spot.diff.BTCUSDT"
		filesSubj   = "files.spot.diff"
		sealedPath  = "spot/diff_orderbooks/BTCUSDT/2026-11-21.parquet"
		shardName   = "writer-0-of-1"
	)
	diffID := md.MsgID(md.Spot, md.Diff, "BTCUSDT", 42)
	stored := 0 // messages stored in MARKETDATA so far

	ingest := permConnect(t, url, "ingest")
	t.Run("ingest publishes with acks", func(t *testing.T) {
		if err := EnsureStreams(permCtx(t, 10*time.Second), ingest.js, permStreams(false)); err != nil {
			t.Fatalf("EnsureStreams with NATS_PROVISION=false: %v", err)
		}
		ack := permPublishAsync(t, ingest, diffSubject, diffID, []byte("diff frame"))
		if ack.Stream != md.StreamMarketData || ack.Duplicate {
			t.Fatalf("async publish ack = %+v, want a new message in %s", ack, md.StreamMarketData)
		}
		stored++
		// The same exchange event from another replica: deduplicated.
		msg := nats.NewMsg(diffSubject)
		msg.Data = []byte("diff frame")
		ack2, err := ingest.js.PublishMsg(permCtx(t, 5*time.Second), msg, jetstream.WithMsgID(diffID))
		if err != nil || !ack2.Duplicate {
			t.Fatalf("sync publish of the same id: ack %+v, err %v; want a duplicate", ack2, err)
		}
		gap, err := ingest.js.Publish(permCtx(t, 5*time.Second), "md.binance.spot.gap.BTCUSDT", []byte("gap record"))
		if err != nil || gap.Stream != md.StreamMarketData {
			t.Fatalf("gap record: ack %+v, err %v", gap, err)
		}
		stored++
		dlq, err := ingest.js.Publish(permCtx(t, 5*time.Second), md.DLQSubject("spot-ws", md.Spot, md.Diff), []byte("bad frame"))
		if err != nil || dlq.Stream != md.StreamDLQ {
			t.Fatalf("dead letter: ack %+v, err %v", dlq, err)
		}
		ingest.noViolations(t)
	})

	t.Run("ingest cannot consume, read or manage streams", func(t *testing.T) {
		_, err := ingest.js.CreateConsumer(permCtx(t, deniedWait), md.StreamMarketData, jetstream.ConsumerConfig{
			Durable: shardName, AckPolicy: jetstream.AckAllPolicy, FilterSubjects: permShardFilters(0, 1)})
		ingest.wantDenied(t, "create consumer", err, "$JS.API.CONSUMER.CREATE.MARKETDATA."+shardName)

		_, err = ingest.nc.RequestWithContext(permCtx(t, deniedWait), "$JS.API.CONSUMER.MSG.NEXT.MARKETDATA.probe", []byte(`{"batch":1,"expires":500000000}`))
		ingest.wantDenied(t, "fetch", err, "$JS.API.CONSUMER.MSG.NEXT.MARKETDATA.probe")

		_, err = ingest.js.Consumer(permCtx(t, deniedWait), md.StreamMarketData, "probe")
		ingest.wantDenied(t, "consumer info", err, "$JS.API.CONSUMER.INFO.MARKETDATA.probe")

		stream, err := ingest.js.Stream(permCtx(t, 5*time.Second), md.StreamMarketData)
		if err != nil {
			t.Fatalf("stream info: %v", err)
		}
		_, err = stream.GetMsg(permCtx(t, deniedWait), 1)
		ingest.wantDenied(t, "get message", err, "$JS.API.STREAM.MSG.GET.MARKETDATA")

		err = stream.Purge(permCtx(t, deniedWait))
		ingest.wantDenied(t, "purge", err, "$JS.API.STREAM.PURGE.MARKETDATA")

		err = ingest.js.DeleteStream(permCtx(t, deniedWait), md.StreamMarketData)
		ingest.wantDenied(t, "delete stream", err, "$JS.API.STREAM.DELETE.MARKETDATA")

		_, err = ingest.js.UpdateStream(permCtx(t, deniedWait), permStreams(true).StreamConfigs()[0])
		ingest.wantDenied(t, "update stream", err, "$JS.API.STREAM.UPDATE.MARKETDATA")

		ingest.wantSubscribeDenied(t, "md.>")
		ingest.wantPublishDenied(t, filesSubj)                          // forge a FileSealed
		ingest.wantPublishDenied(t, "md.binance.spot.snapshot.BTCUSDT") // forge a REST snapshot
		ingest.wantPublishDenied(t, diffSubject+".7")                   // bypass the partition transform
		ingest.wantPublishDenied(t, "dlq.writer.spot.diff")
	})

	snap := permConnect(t, url, "snapshotter")
	t.Run("snapshotter answers on-demand requests and publishes snapshots", func(t *testing.T) {
		if err := EnsureStreams(permCtx(t, 10*time.Second), snap.js, permStreams(false)); err != nil {
			t.Fatalf("EnsureStreams with NATS_PROVISION=false: %v", err)
		}
		sub, err := snap.nc.QueueSubscribe(md.ControlFilter(md.Spot), "rest-snapshotter", func(m *nats.Msg) {
			_ = m.Respond([]byte(`{"lastUpdateId":43}`))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		snap.noViolations(t)
		reply, err := ingest.nc.RequestWithContext(permCtx(t, 5*time.Second), md.ControlSubject(md.Spot, "BTCUSDT"), []byte(`{"reason":"gap"}`))
		if err != nil || string(reply.Data) != `{"lastUpdateId":43}` {
			t.Fatalf("ingest's ctl.snapshot request: reply %v, err %v", reply, err)
		}
		ack := permPublishAsync(t, snap, md.Subject(md.Spot, md.Snapshot, "BTCUSDT"), md.MsgID(md.Spot, md.Snapshot, "BTCUSDT", 43), []byte("rest snapshot"))
		if ack.Stream != md.StreamMarketData {
			t.Fatalf("snapshot ack = %+v", ack)
		}
		stored++
		snap.noViolations(t)
		ingest.noViolations(t)

		snap.wantPublishDenied(t, "_INBOX.forged") // replies only to requests it received
		snap.wantPublishDenied(t, diffSubject)
		_, err = snap.js.CreateConsumer(permCtx(t, deniedWait), md.StreamMarketData, jetstream.ConsumerConfig{Durable: "snap"})
		snap.wantDenied(t, "create consumer", err, "$JS.API.CONSUMER.CREATE.MARKETDATA.snap")
	})

	writer := permConnect(t, url, "writer")
	t.Run("writer provisions, consumes MARKETDATA and publishes files", func(t *testing.T) {
		if err := EnsureStreams(permCtx(t, 10*time.Second), writer.js, permStreams(true)); err != nil {
			t.Fatalf("EnsureStreams with NATS_PROVISION=true: %v", err)
		}
		stream, err := writer.js.Stream(permCtx(t, 5*time.Second), md.StreamMarketData)
		if err != nil {
			t.Fatal(err)
		}
		// As services/writer starts: delete the old consumer, create it at
		// the checkpoint's sequence + 1.
		if err := stream.DeleteConsumer(permCtx(t, 5*time.Second), shardName); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatalf("delete consumer: %v, want ErrConsumerNotFound (an answer, not a denial)", err)
		}
		cons, err := stream.CreateConsumer(permCtx(t, 5*time.Second), jetstream.ConsumerConfig{
			Durable:        shardName,
			DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:    1,
			AckPolicy:      jetstream.AckAllPolicy,
			AckWait:        time.Minute,
			MaxDeliver:     -1,
			MaxAckPending:  -1,
			FilterSubjects: permShardFilters(0, 1),
		})
		if err != nil {
			t.Fatalf("create consumer %s: %v", shardName, err)
		}
		it, err := cons.Messages(jetstream.PullMaxBytes(1 << 20))
		if err != nil {
			t.Fatal(err)
		}
		var last jetstream.Msg
		for i := 0; i < stored; i++ {
			msg, err := it.Next(jetstream.NextMaxWait(5 * time.Second))
			if err != nil {
				t.Fatalf("message %d of %d: %v", i+1, stored, err)
			}
			if _, _, _, err := md.ParseSubject(msg.Subject()); err != nil || strings.Count(msg.Subject(), ".") != 5 {
				t.Fatalf("stored subject %q: want md.binance.<market>.<kind>.<SYMBOL>.<partition> (%v)", msg.Subject(), err)
			}
			last = msg
		}
		it.Stop()
		if err := last.DoubleAck(permCtx(t, 5*time.Second)); err != nil {
			t.Fatalf("ack (AckAll) as writer: %v", err)
		}
		info, err := cons.Info(permCtx(t, 5*time.Second))
		if err != nil || info.NumAckPending != 0 || info.AckFloor.Stream == 0 {
			t.Fatalf("consumer info after the ack: %+v, %v", info, err)
		}
		// A shard with a single filter uses the CONSUMER.CREATE.<stream>.<name>.<filter> form.
		if _, err := writer.js.CreateConsumer(permCtx(t, 5*time.Second), md.StreamMarketData, jetstream.ConsumerConfig{
			Durable: "writer-0-of-64", FilterSubject: md.PartitionFilter(0), AckPolicy: jetstream.AckAllPolicy}); err != nil {
			t.Fatalf("create consumer with a filter subject: %v", err)
		}
		if err := writer.js.DeleteConsumer(permCtx(t, 5*time.Second), md.StreamMarketData, "writer-0-of-64"); err != nil {
			t.Fatal(err)
		}

		ack, err := writer.js.Publish(permCtx(t, 5*time.Second), filesSubj, []byte(sealedPath), jetstream.WithMsgID(sealedPath))
		if err != nil || ack.Stream != md.StreamFiles {
			t.Fatalf("FileSealed: ack %+v, err %v", ack, err)
		}
		if ack, err := writer.js.Publish(permCtx(t, 5*time.Second), md.DLQSubject("writer", md.Spot, md.Diff), []byte("bad")); err != nil || ack.Stream != md.StreamDLQ {
			t.Fatalf("writer dead letter: ack %+v, err %v", ack, err)
		}
		writer.noViolations(t)

		err = stream.Purge(permCtx(t, deniedWait))
		writer.wantDenied(t, "purge", err, "$JS.API.STREAM.PURGE.MARKETDATA")
		err = writer.js.DeleteStream(permCtx(t, deniedWait), md.StreamMarketData)
		writer.wantDenied(t, "delete stream", err, "$JS.API.STREAM.DELETE.MARKETDATA")
		_, err = writer.js.CreateOrUpdateConsumer(permCtx(t, deniedWait), md.StreamFiles, jetstream.ConsumerConfig{Durable: "uploader", FilterSubject: md.FilesFilter})
		writer.wantDenied(t, "consume FILES", err, "$JS.API.CONSUMER.CREATE.FILES.uploader.files.>")
		writer.wantPublishDenied(t, diffSubject)
	})

	uploader := permConnect(t, url, "uploader")
	t.Run("uploader consumes FILES", func(t *testing.T) {
		if err := EnsureStreams(permCtx(t, 10*time.Second), uploader.js, permStreams(false)); err != nil {
			t.Fatalf("EnsureStreams with NATS_PROVISION=false: %v", err)
		}
		// services/uploader's ConsumerConfig.
		cons, err := uploader.js.CreateOrUpdateConsumer(permCtx(t, 5*time.Second), md.StreamFiles, jetstream.ConsumerConfig{
			Durable:       "uploader",
			FilterSubject: md.FilesFilter,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       time.Minute,
			MaxAckPending: 4,
			MaxDeliver:    -1,
		})
		if err != nil {
			t.Fatalf("create consumer uploader on FILES: %v", err)
		}
		msg := permNext(t, uploader, cons, jetstream.PullMaxMessages(4))
		if string(msg.Data()) != sealedPath {
			t.Fatalf("FILES message %q, want %q", msg.Data(), sealedPath)
		}
		if err := msg.InProgress(); err != nil {
			t.Fatal(err)
		}
		if err := msg.DoubleAck(permCtx(t, 5*time.Second)); err != nil {
			t.Fatalf("ack as uploader: %v", err)
		}
		uploader.noViolations(t)
	})

	t.Run("uploader cannot consume MARKETDATA", func(t *testing.T) {
		_, err := uploader.js.CreateConsumer(permCtx(t, deniedWait), md.StreamMarketData, jetstream.ConsumerConfig{Durable: "steal"})
		uploader.wantDenied(t, "create consumer", err, "$JS.API.CONSUMER.CREATE.MARKETDATA.steal")
		_, err = uploader.nc.RequestWithContext(permCtx(t, deniedWait), "$JS.API.CONSUMER.MSG.NEXT.MARKETDATA."+shardName, []byte(`{"batch":1}`))
		uploader.wantDenied(t, "fetch", err, "$JS.API.CONSUMER.MSG.NEXT.MARKETDATA."+shardName)
		uploader.wantSubscribeDenied(t, "md.>")
		uploader.wantPublishDenied(t, filesSubj)
	})

	// Nothing the denied users tried changed the streams.
	for name, want := range map[string]uint64{md.StreamMarketData: uint64(stored), md.StreamFiles: 0} {
		s, err := admin.js.Stream(permCtx(t, 5*time.Second), name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().State.Msgs; got != want {
			t.Errorf("%s holds %d messages, want %d", name, got, want)
		}
	}
}

// TestPermissionsLeafIngest runs the hub (single.conf plus
// hub-leafnodes.conf) and a leaf node (leaf.conf) as separate processes and
// proves the path of an ingest replica in another region: through the leaf
// it checks the streams (JetStream API under the hub's domain), publishes
// with acks, asks the hub's or the region's snapshotter for a snapshot, and
// is still refused consumers.
func TestPermissionsLeafIngest(t *testing.T) {
	permSetEnv(t)
	tlsDir := filepath.Join(t.TempDir(), "tls")
	permWriteTLS(t, tlsDir)
	leafPort := bustest.FreePort(t)
	confDir := permConfs(t, []string{
		"/etc/nats/tls/", tlsDir + "/",
		"0.0.0.0:7422", "127.0.0.1:" + strconv.Itoa(leafPort),
	})
	hubConf := filepath.Join(confDir, "hub-test.conf")
	if err := os.WriteFile(hubConf, []byte("include ./single.conf\ninclude ./hub-leafnodes.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hubURL := permRunServer(t, "-c", hubConf)

	t.Setenv("NATS_SERVER_NAME", "leaf-test")
	t.Setenv("NATS_HUB_LEAF_URL", fmt.Sprintf("nats-leaf://leaf:%s@127.0.0.1:%d", permPasswords["NATS_LEAF_PASSWORD"], leafPort))
	leafURL := permRunServer(t, "-c", filepath.Join(confDir, "leaf.conf"))

	admin := permConnect(t, hubURL, "admin")
	if err := EnsureStreams(permCtx(t, 20*time.Second), admin.js, permStreams(true)); err != nil {
		t.Fatal(err)
	}
	hubSnap := permConnect(t, hubURL, "snapshotter")
	sub, err := hubSnap.nc.QueueSubscribe(md.ControlFilter(md.Spot), "rest-snapshotter", func(m *nats.Msg) {
		_ = m.Respond([]byte("hub"))
	})
	if err != nil {
		t.Fatal(err)
	}
	hubSnap.noViolations(t)

	ingest := permConnect(t, leafURL, "ingest")
	// EnsureStreams retries until the leaf connection is up.
	if err := EnsureStreams(permCtx(t, 30*time.Second), ingest.js, permStreams(false)); err != nil {
		t.Fatalf("EnsureStreams through the leaf: %v", err)
	}
	ack := permPublishAsync(t, ingest, "md.binance.spot.diff.ETHUSDT", md.MsgID(md.Spot, md.Diff, "ETHUSDT", 7), []byte("frame"))
	if ack.Stream != md.StreamMarketData || ack.Domain != "hub" {
		t.Fatalf("publish through the leaf: ack %+v, want stream %s in domain hub", ack, md.StreamMarketData)
	}
	reply, err := ingest.nc.RequestWithContext(permCtx(t, 5*time.Second), md.ControlSubject(md.Spot, "ETHUSDT"), nil)
	if err != nil || string(reply.Data) != "hub" {
		t.Fatalf("ctl.snapshot request through the leaf: %v, %v", reply, err)
	}
	_ = sub.Unsubscribe()
	ingest.noViolations(t)

	// The leaf's own snapshotter user works locally: it answers the
	// region's ingest and publishes snapshots to the hub's stream.
	leafSnap := permConnect(t, leafURL, "snapshotter")
	if _, err := leafSnap.nc.QueueSubscribe(md.ControlFilter(md.Futures), "rest-snapshotter", func(m *nats.Msg) {
		_ = m.Respond([]byte("leaf"))
	}); err != nil {
		t.Fatal(err)
	}
	leafSnap.noViolations(t)
	reply, err = ingest.nc.RequestWithContext(permCtx(t, 5*time.Second), md.ControlSubject(md.Futures, "ETHUSDT"), nil)
	if err != nil || string(reply.Data) != "leaf" {
		t.Fatalf("ctl.snapshot request to the leaf's snapshotter: %v, %v", reply, err)
	}
	ack = permPublishAsync(t, leafSnap, md.Subject(md.Futures, md.Snapshot, "ETHUSDT"), md.MsgID(md.Futures, md.Snapshot, "ETHUSDT", 9), []byte("rest snapshot"))
	if ack.Stream != md.StreamMarketData || ack.Domain != "hub" {
		t.Fatalf("snapshot through the leaf: ack %+v", ack)
	}
	leafSnap.noViolations(t)

	_, err = ingest.js.CreateConsumer(permCtx(t, deniedWait), md.StreamMarketData, jetstream.ConsumerConfig{Durable: "writer-0-of-1"})
	// The leaf checks permissions after its account mapping to the hub's domain.
	ingest.wantDenied(t, "create consumer through the leaf", err, "$JS.hub.API.CONSUMER.CREATE.MARKETDATA.writer-0-of-1")
	ingest.wantPublishDenied(t, "files.spot.diff")

	s, err := admin.js.Stream(permCtx(t, 5*time.Second), md.StreamMarketData)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().State.Msgs; got != 2 {
		t.Fatalf("MARKETDATA holds %d messages, want the 2 published through the leaf", got)
	}
}

// permRunServer runs nats-server (the version bustest builds) with args
// (a -c configuration) on free client and monitoring ports, and returns its
// client URL. It is killed at cleanup. bustest.StartProcess does not fit:
// it adds -js and -sd, and nats-server refuses -sd next to a configuration
// that sets store_dir. A port taken between FreePort and the server's bind
// (other tests run on this machine too) is retried with new ports.
func permRunServer(t *testing.T, args ...string) string {
	t.Helper()
	for attempt := 1; ; attempt++ {
		url, out, err := permStartServer(t, args)
		if err == nil {
			return url
		}
		if attempt < 3 && strings.Contains(out, "address already in use") {
			t.Logf("nats-server %v: %v; retrying with other ports", args, err)
			continue
		}
		t.Fatalf("nats-server %v: %v\n%s", args, err, out)
	}
}

func permStartServer(t *testing.T, args []string) (url, output string, err error) {
	t.Helper()
	port := bustest.FreePort(t)
	flags := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(bustest.FreePort(t))}
	cmd := exec.Command(bustest.NATSServerBinary(t), append(flags, args...)...)
	var out permLog
	cmd.Stdout, cmd.Stderr = &out, &out
	if testing.Verbose() {
		cmd.Stderr = io.MultiWriter(&out, os.Stderr)
	}
	if err := cmd.Start(); err != nil {
		return "", "", err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		select {
		case <-done:
			return "", out.String(), errors.New("exited at start")
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-done
			})
			return "nats://" + addr, "", nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-done
	return "", out.String(), fmt.Errorf("did not listen on %s", addr)
}

// permLog collects a server's output for the failure message.
type permLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *permLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < 64<<10 {
		l.buf.Write(p)
	}
	return len(p), nil
}

func (l *permLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// permConfs copies deploy/nats/*.conf into a temporary directory and
// returns it. The copies differ from the deployed files only by the
// JetStream store directory (a temporary one) and the replacements given
// as old, new pairs.
func permConfs(t *testing.T, replace []string) string {
	t.Helper()
	src, dst := permDeployDir(t), filepath.Join(t.TempDir(), "nats")
	r := strings.NewReplacer(append([]string{`"/data/jetstream"`, strconv.Quote(filepath.Join(t.TempDir(), "jetstream"))}, replace...)...)
	files, err := filepath.Glob(filepath.Join(src, "*.conf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no configurations in %s: %v", src, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), []byte(r.Replace(string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// permWriteTLS writes ca.pem, server.pem and server-key.pem, as
// deploy/README.md describes them, for 127.0.0.1.
func permWriteTLS(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "depthcap test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "depthcap test server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost", "n1", "n2", "n3"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.pem":         {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem":     {Type: "CERTIFICATE", Bytes: der},
		"server-key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
