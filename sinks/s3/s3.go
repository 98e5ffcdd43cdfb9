// Package s3 is the object-storage destination: the Parquet sink's files, in
// a bucket of AWS S3 or of any server that speaks its API (MinIO, SeaweedFS,
// Ceph, versitygw, GCS's XML API), committed exactly once.
//
// # Layout
//
// Under the block's prefix P (may be empty), a stream's rows land in
//
//	P<stream>/part-<UTC start>-<run token>-<seq>-<n>.parquet
//	P<stream>/<column>_date=YYYY-MM-DD/part-...parquet   (partition_by = "<column>")
//
// and the sink keeps its own records beside them, under P_pipehost/ (a
// leading underscore, which Hive-style readers skip):
//
//	P_pipehost/staging/<stream>/...parquet.tmp             files not yet committed
//	P_pipehost/commits/<stream>/<pipeline>/<inverted seq>.json
//
// # The commit
//
// S3 has no rename, and a commit may hold several files (one per partition),
// so the commit point is one object: the pipeline's next commit record.
//  1. Each file is written to a local spool file, then uploaded to its
//     staging key, where no reader of P<stream>/ looks.
//  2. The commit record (the files, their rows, the checkpoint) is put with
//     If-None-Match: * under the next sequence number. That put is the commit:
//     if another host committed that number first, the put fails with 412 and
//     this run's rows stay invisible; the run fails, loudly.
//  3. Each staged file is copied to its place and the staged copy deleted.
//
// A crash before 2 leaves staged objects only (removed a day later by the
// next writer of the stream); a crash after 2 leaves a record whose files
// are not all in place: the next writer of the stream finishes the copies
// before it writes anything (roll forward). Readers of
// P<stream>/ therefore see a commit's files only after its checkpoint is
// durable, and never a half file: S3 makes an object visible whole.
//
// Sequence numbers are stored inverted (MaxInt64 - seq, 19 digits), so the
// newest record is the first a listing returns: finding it costs one request
// however many runs there were.
//
// # Credentials
//
// From the AWS SDK's default chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
// (and AWS_SESSION_TOKEN), AWS_PROFILE or the block's profile in the shared
// config files, web identity (EKS), container and instance roles. The block
// holds no secret, and none is logged or printed.
package s3

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
	"github.com/hashicorp/go-hclog"

	"pipehost/sinks"
	"pipehost/sinks/parquet"
)

func init() { sinks.Register("s3", Driver{}) }

// Config is the `sink "s3" "NAME"` block.
type Config struct {
	// Bucket is the bucket's name.
	Bucket string `hcl:"bucket"`
	// Prefix is the key prefix every object of the sink starts with
	// ("nuorder" or "nuorder/": both put streams under nuorder/).
	Prefix *string `hcl:"prefix,optional"`
	// Region is the bucket's region. Default: AWS_REGION or the profile's,
	// else us-east-1 (which S3-compatible servers usually accept).
	Region *string `hcl:"region,optional"`
	// Endpoint is the URL of an S3-compatible server
	// ("http://127.0.0.1:7070", "https://storage.googleapis.com"). Default
	// (or empty): AWS S3.
	Endpoint *string `hcl:"endpoint,optional"`
	// PathStyle addresses the bucket in the path (endpoint/bucket/key)
	// rather than the host name. Default: true with an endpoint (what
	// MinIO, SeaweedFS, Ceph and versitygw expect), false for AWS.
	PathStyle *bool `hcl:"path_style,optional"`
	// Profile is a profile of the shared AWS config and credentials files.
	Profile *string `hcl:"profile,optional"`
	// PartitionBy names a timestamp or date column: each file then holds
	// one UTC date of it, under <column>_date=YYYY-MM-DD/ (Hive style; rows
	// without a value under <column>_date=__HIVE_DEFAULT_PARTITION__/).
	PartitionBy *string `hcl:"partition_by,optional"`
	// FormatConfig holds the Parquet format's settings (compression,
	// compression_level, row_group_rows, row_group_mib, dictionary), as in
	// the parquet sink.
	parquet.FormatConfig `hcl:",remain"`
}

// Driver opens object-storage sinks.
type Driver struct{}

var _ sinks.Driver = Driver{}

// Modes implements sinks.Driver: commits append files; an overwrite (and
// --full-refresh) stages its files until its final commit, whose one record
// names them all and replaces every other object of the stream's prefix.
// S3 cannot swap a prefix at once: a reader listing it while the old
// objects are removed may see both for that moment.
func (Driver) Modes() []string { return []string{sinks.Append, sinks.Overwrite} }

// Open implements sinks.Driver.
func (Driver) Open(decode sinks.Decode, env sinks.Env) (sinks.Sink, error) {
	var c Config
	if err := decode(&c); err != nil {
		return nil, err
	}
	return Open(&c, env)
}

// Open validates c and returns a sink. It reaches no server and reads no
// credentials: the first stream opened does. It errors on an empty or
// malformed bucket, an endpoint that is not an http(s) URL, and a bad
// Parquet format setting.
func Open(c *Config, env sinks.Env) (*Sink, error) {
	format, err := c.FormatConfig.Format()
	if err != nil {
		return nil, err
	}
	if c.Bucket == "" || strings.ContainsAny(c.Bucket, "/ ") {
		return nil, sinks.BadAttribute("bucket", "bucket %q is not a bucket name (no slashes: put the folder in prefix)", c.Bucket)
	}
	s := &Sink{bucket: c.Bucket, format: format, log: env.Logger}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if c.Prefix != nil {
		p := strings.Trim(*c.Prefix, "/")
		if p != "" {
			s.prefix = p + "/"
		}
	}
	// An empty endpoint, region or profile is unset, so that a block can
	// take them from env("...", "").
	for _, p := range []**string{&c.Endpoint, &c.Region, &c.Profile} {
		if *p != nil && **p == "" {
			*p = nil
		}
	}
	if c.Endpoint != nil {
		u, err := url.Parse(*c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, sinks.BadAttribute("endpoint", "endpoint %q is not an http(s) URL", redactURL(*c.Endpoint))
		}
		if u.User != nil {
			return nil, sinks.BadAttribute("endpoint", "endpoint %q carries credentials: give them through the AWS environment or a profile", redactURL(*c.Endpoint))
		}
		s.endpoint = u.String()
	}
	s.cfg = *c
	if c.PartitionBy != nil && *c.PartitionBy == "" {
		return nil, sinks.BadAttribute("partition_by", "partition_by is empty: name a timestamp or date column, or leave it out")
	}
	s.spool = filepath.Join(os.TempDir(), "pipehost-s3-spool")
	s.multipartAbove, s.partSize, s.maxCopy = multipartAbove, partSize, maxCopy
	s.answerTimeout = answerTimeout
	return s, nil
}

// redactURL drops a URL's user info, so a mistaken endpoint with a password
// is never echoed.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	return u.String()
}

// Sink writes streams as Parquet objects under one bucket and prefix.
type Sink struct {
	cfg      Config
	bucket   string
	prefix   string // "" or ending in "/"
	endpoint string // "" for AWS
	format   parquet.Format
	log      hclog.Logger
	// spool is the local folder where files are written before upload.
	spool string
	// multipartAbove, partSize and maxCopy are the upload and copy
	// constants, answerTimeout the wait for an answer; tests lower them.
	multipartAbove, partSize, maxCopy int64
	answerTimeout                     time.Duration

	once   sync.Once
	client *awss3.Client
	errC   error
}

var (
	_ sinks.Sink             = (*Sink)(nil)
	_ sinks.CheckpointReader = (*Sink)(nil)
	_ sinks.Locator          = (*Sink)(nil)
	_ sinks.StreamChecker    = (*Sink)(nil)
)

// credentialsTimeout bounds the search for credentials. Without any, the
// SDK's chain ends by asking the instance metadata service, which off a
// cloud machine answers nothing; 15 s is long enough for a real role on a
// slow start and short enough that a forgotten variable fails the run
// instead of hanging it.
const credentialsTimeout = 15 * time.Second

// answerTimeout bounds the wait for a server's answer to a request once
// the request is sent (a response's headers; an upload's body is not
// counted). Without it a server that accepts and then says nothing would
// hang the run with no end. S3 answers a long copy with its headers at
// once and the result later, so a minute is generous; the SDK retries a
// timed-out request (3 attempts in all), then the run fails naming it.
const answerTimeout = time.Minute

// s3 returns the client, made once: the AWS configuration is loaded and the
// credentials retrieved (so a missing one fails here, with what to set).
func (s *Sink) s3(ctx context.Context) (*awss3.Client, error) {
	s.once.Do(func() {
		var opts []func(*awsconfig.LoadOptions) error
		if s.cfg.Region != nil {
			opts = append(opts, awsconfig.WithRegion(*s.cfg.Region))
		}
		if s.cfg.Profile != nil {
			opts = append(opts, awsconfig.WithSharedConfigProfile(*s.cfg.Profile))
		}
		if s.endpoint != "" {
			// Servers other than AWS often reject the SDK's default
			// trailing checksums (aws-chunked uploads); ask for checksums
			// only where the API requires them.
			opts = append(opts,
				awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
				awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
		}
		// The SDK's own warnings (an instance metadata fallback, say) go
		// to the host's log at debug level, not to stderr unannounced.
		opts = append(opts, awsconfig.WithLogger(logging.LoggerFunc(func(_ logging.Classification, format string, v ...any) {
			s.log.Debug("aws sdk: " + fmt.Sprintf(format, v...))
		})))
		opts = append(opts, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.ResponseHeaderTimeout = s.answerTimeout
		})))
		// A server that keeps objects as files in folders (versitygw's
		// posix backend, MinIO on one drive) refuses a put with 409
		// ExistingObjectIsDirectory when another writer's delete removes
		// the emptied folder under the key at that moment; the next
		// attempt succeeds, so it is retried like a throttle (puts here
		// are idempotent or conditional).
		opts = append(opts, awsconfig.WithRetryer(func() aws.Retryer {
			return retry.AddWithErrorCodes(retry.NewStandard(), "ExistingObjectIsDirectory")
		}))
		cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			s.errC = fmt.Errorf("loading the AWS configuration: %w", err)
			return
		}
		if cfg.Region == "" {
			cfg.Region = "us-east-1"
		}
		rctx, cancel := context.WithTimeout(ctx, credentialsTimeout)
		defer cancel()
		if _, err := cfg.Credentials.Retrieve(rctx); err != nil {
			s.errC = fmt.Errorf("no AWS credentials for s3://%s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (or the block's profile), or run where a role provides them (%v)", s.bucket, err)
			return
		}
		s.client = awss3.NewFromConfig(cfg, func(o *awss3.Options) {
			if s.endpoint != "" {
				o.BaseEndpoint = aws.String(s.endpoint)
				o.UsePathStyle = true
			}
			if s.cfg.PathStyle != nil {
				o.UsePathStyle = *s.cfg.PathStyle
			}
		})
	})
	return s.client, s.errC
}

// CheckStream implements sinks.StreamChecker: a stream's name is a key
// segment, and _pipehost/ is the sink's own.
func (s *Sink) CheckStream(stream string) error {
	if stream == "" || strings.ContainsAny(stream, "/\\") || strings.HasPrefix(stream, "_") || strings.HasPrefix(stream, ".") {
		return fmt.Errorf("stream name %q cannot be a key segment of the s3 sink (no slashes, no leading _ or .)", stream)
	}
	return nil
}

// Location implements sinks.Locator: the stream's prefix, and the server
// when it is not AWS.
func (s *Sink) Location(stream string) string {
	loc := "s3://" + s.bucket + "/" + s.prefix + stream + "/"
	if s.endpoint != "" {
		loc += " at " + s.endpoint
	}
	return loc
}

// Checkpoint implements sinks.CheckpointReader: the checkpoint of the
// pipeline's newest commit record. It only reads (plan calls it); a record
// whose files a crash left staged is finished by the next writer's Open,
// before it writes anything.
func (s *Sink) Checkpoint(ctx context.Context, pipeline, stream string) ([]byte, time.Time, error) {
	c, err := s.s3(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	rec, err := s.store(c, stream, pipeline).head(ctx)
	if err != nil || rec == nil {
		return nil, time.Time{}, err
	}
	return rec.Checkpoint, rec.CommittedAt, nil
}

// Close implements sinks.Sink.
func (s *Sink) Close() error { return nil }
