package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"
	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"pipehost/sinks"
	"pipehost/sinks/parquet"
)

// server returns the test server's endpoint, with its credentials set as
// the AWS variables of this test (and no shared config files): the sink
// finds them through the SDK's default chain, as in production.
func server(t *testing.T) string {
	t.Helper()
	ep := os.Getenv("PIPEHOST_TEST_S3_ENDPOINT")
	if ep == "" {
		t.Skip("PIPEHOST_TEST_S3_ENDPOINT is not set: run the tests with `make test` (scripts/with-s3.sh starts versitygw)")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", os.Getenv("PIPEHOST_TEST_S3_ACCESS_KEY_ID"))
	t.Setenv("AWS_SECRET_ACCESS_KEY", os.Getenv("PIPEHOST_TEST_S3_SECRET_ACCESS_KEY"))
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	return ep
}

// bucket makes a fresh bucket on the test server and returns its name and
// a client of the test's own.
func bucket(t *testing.T) (string, *awss3.Client, string) {
	t.Helper()
	ep := server(t)
	s, err := Open(&Config{Bucket: "probe", Endpoint: &ep}, sinks.Env{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.s3(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("t%d-%d", time.Now().UnixNano(), rand.IntN(1000))
	if _, err := c.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	return name, c, ep
}

func newSink(t *testing.T, b, ep string, extra func(*Config)) *Sink {
	t.Helper()
	prefix := "lake/nuorder"
	c := &Config{Bucket: b, Endpoint: &ep, Prefix: &prefix}
	if extra != nil {
		extra(c)
	}
	s, err := Open(c, sinks.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "n", Type: arrow.PrimitiveTypes.Int64},
	{Name: "created_on", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
}, nil)

// day0 is the first row's date; row i is created i hours later, so 24
// rows make a day; every 50th row has no date.
var day0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func batch(from, to int64) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := from; i < to; i++ {
		b.Field(0).(*array.Int64Builder).Append(i)
		if i%50 == 49 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(day0.Add(time.Duration(i) * time.Hour).UnixMilli()))
		}
	}
	return b.NewRecord()
}

func write(t *testing.T, w sinks.Writer, from, to int64) {
	t.Helper()
	rec := batch(from, to)
	defer rec.Release()
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

// keys lists the bucket's keys under prefix, sorted.
func keys(t *testing.T, c *awss3.Client, b, prefix string) []string {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: aws.String(b), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, o := range out.Contents {
		ks = append(ks, aws.ToString(o.Key))
	}
	sort.Strings(ks)
	return ks
}

// column reads column n of a Parquet object.
func column(t *testing.T, c *awss3.Client, b, key string) []int64 {
	t.Helper()
	obj, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	rdr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	var ns []int64
	for _, ch := range tbl.Column(0).Data().Chunks() {
		ns = append(ns, ch.(*array.Int64).Int64Values()...)
	}
	return ns
}

func TestRowsAreVisibleOnlyWithTheirCommit(t *testing.T) {
	b, c, ep := bucket(t)
	s := newSink(t, b, ep, nil)
	ctx := context.Background()
	w, err := s.Open(ctx, sinks.Stream{Pipeline: "orders", Name: "orders", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	write(t, w, 0, 1000)
	write(t, w, 1000, 2500)
	if ks := keys(t, c, b, ""); len(ks) != 0 {
		t.Fatalf("objects before the commit: %v", ks)
	}
	info, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"cursor":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	data := keys(t, c, b, "lake/nuorder/orders/")
	if info.Rows != 2500 || len(data) != 1 || info.Location != "s3://"+b+"/"+data[0] {
		t.Fatalf("commit: %+v; objects %v", info, data)
	}
	if ns := column(t, c, b, data[0]); len(ns) != 2500 || ns[0] != 0 || ns[2499] != 2499 {
		t.Fatalf("the object holds %d rows", len(ns))
	}
	if staged := keys(t, c, b, "lake/nuorder/_pipehost/staging/"); len(staged) != 0 {
		t.Fatalf("staged objects left after the commit: %v", staged)
	}
	// A second commit is a second object and a second record; an empty
	// commit is none.
	write(t, w, 2500, 3000)
	if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"cursor":2}`)}); err != nil {
		t.Fatal(err)
	}
	if info, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"cursor":3}`), Final: true}); err != nil || info.Rows != 0 {
		t.Fatalf("empty commit: %+v %v", info, err)
	}
	if n := len(keys(t, c, b, "lake/nuorder/orders/")); n != 2 {
		t.Fatalf("%d objects after two commits", n)
	}
	if n := len(keys(t, c, b, "lake/nuorder/_pipehost/commits/orders/orders/")); n != 2 {
		t.Fatalf("%d commit records", n)
	}
	cp, at, err := newSink(t, b, ep, nil).Checkpoint(ctx, "orders", "orders")
	if err != nil || string(cp) != `{"cursor":2}` || time.Since(at) > time.Minute {
		t.Fatalf("checkpoint %s at %v, %v", cp, at, err)
	}
	if cp, _, err := s.Checkpoint(ctx, "order_lines", "orders"); err != nil || cp != nil {
		t.Fatalf("another pipeline's checkpoint: %s %v", cp, err)
	}
}

func TestAbortLeavesNothingInTheBucket(t *testing.T) {
	b, c, ep := bucket(t)
	s := newSink(t, b, ep, func(c *Config) { p := "created_on"; c.PartitionBy = &p })
	w, err := s.Open(context.Background(), sinks.Stream{Pipeline: "orders", Name: "orders", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, 0, 500)
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if ks := keys(t, c, b, ""); len(ks) != 0 {
		t.Fatalf("objects after abort: %v", ks)
	}
}

// TestACommitInterruptedAfterItsRecordIsFinished: the host dies after the
// commit record is put and before the files are copied into place. The
// rows are committed (the checkpoint says so), so the next writer puts the
// files in place before it writes anything.
func TestACommitInterruptedAfterItsRecordIsFinished(t *testing.T) {
	b, c, ep := bucket(t)
	s := newSink(t, b, ep, func(c *Config) { p := "created_on"; c.PartitionBy = &p })
	w, err := s.Open(context.Background(), sinks.Stream{Pipeline: "orders", Name: "orders", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, 0, 100)
	t.Setenv("PIPEHOST_FAILPOINT", "after-s3-commit-record")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte("cp1")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("commit at the failpoint: %v", err)
	}
	os.Unsetenv("PIPEHOST_FAILPOINT")
	if ks := keys(t, c, b, "lake/nuorder/orders/"); len(ks) != 0 {
		t.Fatalf("files in place before the roll forward: %v", ks)
	}
	staged := keys(t, c, b, "lake/nuorder/_pipehost/staging/orders/")
	if len(staged) != 6 { // 100 hours: 5 dates, and rows without one
		t.Fatalf("staged: %v", staged)
	}
	// The checkpoint is the record's, and reading it writes nothing (plan
	// reads it).
	again := newSink(t, b, ep, nil)
	cp, _, err := again.Checkpoint(context.Background(), "orders", "orders")
	if err != nil || string(cp) != "cp1" {
		t.Fatalf("checkpoint %q, %v", cp, err)
	}
	if ks := keys(t, c, b, "lake/nuorder/orders/"); len(ks) != 0 {
		t.Fatalf("reading the checkpoint put files in place: %v", ks)
	}
	// The next writer finishes the commit before anything else.
	w2, err := again.Open(context.Background(), sinks.Stream{Pipeline: "orders", Name: "orders", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	w2.Abort()
	data := keys(t, c, b, "lake/nuorder/orders/")
	if len(data) != 6 || len(keys(t, c, b, "lake/nuorder/_pipehost/staging/")) != 0 {
		t.Fatalf("after the roll forward: %v", data)
	}
	total := 0
	for _, k := range data {
		total += len(column(t, c, b, k))
	}
	if total != 100 {
		t.Fatalf("%d rows in place, want 100", total)
	}
}

// TestTwoHostsCannotCommitTheSameNumber: two writers of one pipeline (two
// hosts whose state stores do not see each other) both start at commit 0.
// The first commit wins; the second fails loudly and leaves no object.
func TestTwoHostsCannotCommitTheSameNumber(t *testing.T) {
	b, c, ep := bucket(t)
	ctx := context.Background()
	st := sinks.Stream{Pipeline: "orders", Name: "orders", Schema: schema}
	w1, err := newSink(t, b, ep, nil).Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := newSink(t, b, ep, nil).Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w1, 0, 10)
	write(t, w2, 100, 120)
	if _, err := w1.Commit(ctx, sinks.Commit{Checkpoint: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	_, err = w2.Commit(ctx, sinks.Commit{Checkpoint: []byte("b")})
	if !errors.Is(err, ErrConcurrentCommit) || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("the second commit: %v", err)
	}
	data := keys(t, c, b, "lake/nuorder/orders/")
	if len(data) != 1 || len(column(t, c, b, data[0])) != 10 {
		t.Fatalf("objects: %v", data)
	}
	if ks := keys(t, c, b, "lake/nuorder/_pipehost/staging/"); len(ks) != 0 {
		t.Fatalf("the losing commit left %v", ks)
	}
}

func TestPartitionsAreHiveFoldersOfTheUTCDate(t *testing.T) {
	b, c, ep := bucket(t)
	s := newSink(t, b, ep, func(c *Config) { p := "created_on"; c.PartitionBy = &p })
	ctx := context.Background()
	w, err := s.Open(ctx, sinks.Stream{Pipeline: "orders", Name: "orders", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	// 30 days of rows, in an order that jumps between dates (more of them
	// than files a writer keeps open), in several batches.
	perm := rand.Perm(24 * 30)
	for i := 0; i < len(perm); i += 90 {
		bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for _, n := range perm[i : i+90] {
			one := batch(int64(n), int64(n)+1)
			bld.Field(0).(*array.Int64Builder).Append(one.Column(0).(*array.Int64).Value(0))
			if one.Column(1).IsNull(0) {
				bld.Field(1).AppendNull()
			} else {
				bld.Field(1).(*array.TimestampBuilder).Append(one.Column(1).(*array.Timestamp).Value(0))
			}
			one.Release()
		}
		rec := bld.NewRecord()
		bld.Release()
		if err := w.Write(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	info, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte("cp"), Final: true})
	if err != nil {
		t.Fatal(err)
	}
	if info.Rows != 720 {
		t.Fatalf("committed %d rows", info.Rows)
	}
	seen := map[int64]bool{}
	folders := map[string]bool{}
	for _, k := range keys(t, c, b, "lake/nuorder/orders/") {
		rest := strings.TrimPrefix(k, "lake/nuorder/orders/")
		folder, _, ok := strings.Cut(rest, "/")
		if !ok || !strings.HasPrefix(folder, "created_on_date=") {
			t.Fatalf("object outside a partition folder: %s", k)
		}
		folders[folder] = true
		for _, n := range column(t, c, b, k) {
			if seen[n] {
				t.Fatalf("row %d twice", n)
			}
			seen[n] = true
			want := "created_on_date=" + day0.Add(time.Duration(n)*time.Hour).Format(time.DateOnly)
			if n%50 == 49 {
				want = "created_on_date=__HIVE_DEFAULT_PARTITION__"
			}
			if folder != want {
				t.Fatalf("row %d in %s, want %s", n, folder, want)
			}
		}
	}
	if len(seen) != 720 || len(folders) != 31 {
		t.Fatalf("%d rows in %d folders, want 720 in 31", len(seen), len(folders))
	}
}

// TestLargeFilesGoUpAndAcrossInParts: a file above the multipart
// threshold is uploaded in parts, and one above the copy limit is put in
// place by a multipart copy (both limits lowered for the test).
func TestLargeFilesGoUpAndAcrossInParts(t *testing.T) {
	b, c, ep := bucket(t)
	s := newSink(t, b, ep, func(c *Config) { none := "none"; c.Compression = &none })
	s.multipartAbove, s.partSize, s.maxCopy = 64<<10, 5<<20, 64<<10 // S3's smallest part is 5 MiB
	ctx := context.Background()
	w, err := s.Open(ctx, sinks.Stream{Pipeline: "orders", Name: "orders", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for i := int64(0); i < 800_000; i += 100_000 {
		write(t, w, i, i+100_000)
	}
	// Stop after the record, to see the staged upload before its copy.
	t.Setenv("PIPEHOST_FAILPOINT", "after-s3-commit-record")
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := w.Commit(cctx, sinks.Commit{Checkpoint: []byte("cp")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	os.Unsetenv("PIPEHOST_FAILPOINT")
	// A multipart object's ETag ends in -<parts>.
	multipart := func(key string) {
		head, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		if etag := aws.ToString(head.ETag); !strings.Contains(etag, "-") || aws.ToInt64(head.ContentLength) < 5<<20 {
			t.Fatalf("%s: ETag %s, %d bytes: not a multipart object", key, etag, aws.ToInt64(head.ContentLength))
		}
	}
	staged := keys(t, c, b, "lake/nuorder/_pipehost/staging/")
	if len(staged) != 1 {
		t.Fatalf("staged: %v", staged)
	}
	multipart(staged[0])
	w2, err := s.Open(ctx, sinks.Stream{Pipeline: "orders", Name: "orders", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	w2.Abort()
	data := keys(t, c, b, "lake/nuorder/orders/")
	if len(data) != 1 {
		t.Fatalf("objects: %v", data)
	}
	multipart(data[0])
	if ns := column(t, c, b, data[0]); len(ns) != 800_000 || ns[799_999] != 799_999 {
		t.Fatalf("%d rows read back", len(ns))
	}
}

func TestCredentialsAreCheckedAndNeverPrinted(t *testing.T) {
	b, _, ep := bucket(t)
	secret := "not-the-secret-" + fmt.Sprint(rand.Int())
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	_, err := newSink(t, b, ep, nil).Open(context.Background(), sinks.Stream{Pipeline: "orders", Name: "orders", Schema: schema})
	if err == nil || !strings.Contains(err.Error(), "refused the credentials") || strings.Contains(err.Error(), secret) {
		t.Fatalf("a wrong secret: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	start := time.Now()
	_, err = newSink(t, b, ep, nil).Open(context.Background(), sinks.Stream{Pipeline: "orders", Name: "orders", Schema: schema})
	if err == nil || !strings.Contains(err.Error(), "no AWS credentials") || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("no credentials: %v", err)
	}
	if d := time.Since(start); d > credentialsTimeout+5*time.Second {
		t.Fatalf("no credentials took %v to say so", d)
	}
}

func TestBadBlocksAreRefusedBeforeAnyRequest(t *testing.T) {
	for _, c := range []Config{
		{Bucket: ""},
		{Bucket: "a/b"},
		{Bucket: "ok", Endpoint: aws.String("127.0.0.1:9000")},
		{Bucket: "ok", Endpoint: aws.String("http://user:hunter2@127.0.0.1:9000")},
		{Bucket: "ok", FormatConfig: parquet.FormatConfig{Compression: aws.String("lz5")}},
		{Bucket: "ok", PartitionBy: aws.String("")},
	} {
		_, err := Open(&c, sinks.Env{})
		if err == nil {
			t.Fatalf("%+v accepted", c)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("the error prints the endpoint's password: %v", err)
		}
	}
	s, _ := Open(&Config{Bucket: "ok", PartitionBy: aws.String("n")}, sinks.Env{})
	if _, err := s.Open(context.Background(), sinks.Stream{Name: "orders", Schema: schema}); err == nil || !strings.Contains(err.Error(), "not a timestamp or date") {
		t.Fatalf("partition by an integer: %v", err)
	}
	if _, err := s.Open(context.Background(), sinks.Stream{Name: "orders", Schema: schema, Mode: sinks.Overwrite}); err == nil {
		t.Fatal("overwrite accepted")
	}
	if err := s.CheckStream("_pipehost"); err == nil {
		t.Fatal("a stream named _pipehost accepted")
	}
}

// TestASilentServerFailsTheRunInsteadOfHangingIt: a server that accepts
// connections and never answers fails the stream's start within its
// answer timeout (lowered here) and the SDK's retries, naming the request.
func TestASilentServerFailsTheRunInsteadOfHangingIt(t *testing.T) {
	server(t) // the credentials
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c) // reads the request, never answers
		}
	}()
	ep := "http://" + ln.Addr().String()
	s := newSink(t, "silent", ep, nil)
	s.answerTimeout = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err = s.Open(ctx, sinks.Stream{Pipeline: "orders", Name: "orders", Schema: schema})
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "ListObjectsV2") {
		t.Fatalf("after %v: %v (context: %v)", time.Since(start), err, ctx.Err())
	}
	t.Logf("a silent server failed the start in %v: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestAnOverwriteReplacesThePrefixAtItsFinalCommit: an overwrite's commits
// before its last only stage their files, so the old objects stay what
// readers see; the final commit's one record replaces every other object
// of the stream's prefix and the pipeline's older records. An aborted
// overwrite leaves the old objects and nothing staged.
func TestAnOverwriteReplacesThePrefixAtItsFinalCommit(t *testing.T) {
	b, c, ep := bucket(t)
	s := newSink(t, b, ep, func(c *Config) { p := "created_on"; c.PartitionBy = &p })
	ctx := context.Background()
	open := func(mode string) sinks.Writer {
		w, err := s.Open(ctx, sinks.Stream{Pipeline: "orders", Name: "orders", Schema: schema, Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	all := func() []int64 {
		var ns []int64
		for _, k := range keys(t, c, b, "lake/nuorder/orders/") {
			ns = append(ns, column(t, c, b, k)...)
		}
		sort.Slice(ns, func(i, j int) bool { return ns[i] < ns[j] })
		return ns
	}
	w := open(sinks.Append)
	write(t, w, 0, 300)
	if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"cursor":1}`)}); err != nil {
		t.Fatal(err)
	}
	write(t, w, 300, 400)
	if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"cursor":2}`), Final: true}); err != nil {
		t.Fatal(err)
	}
	w.Abort()

	// An aborted overwrite: the old rows, nothing staged.
	w = open(sinks.Overwrite)
	write(t, w, 1000, 1050)
	if info, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"cursor":9}`)}); err != nil || info.Rows != 0 {
		t.Fatalf("an overwrite's first commit: %+v %v", info, err)
	}
	if ns := all(); len(ns) != 400 {
		t.Fatalf("an unfinished overwrite shows %d rows, want the old 400", len(ns))
	}
	w.Abort()
	if ks := keys(t, c, b, "lake/nuorder/_pipehost/staging/"); len(ks) != 0 {
		t.Fatalf("an aborted overwrite left staged objects: %v", ks)
	}
	if cp, _, _ := s.Checkpoint(ctx, "orders", "orders"); string(cp) != `{"cursor":2}` {
		t.Fatalf("checkpoint after an aborted overwrite: %s", cp)
	}

	// A finished one: only its rows, one record.
	w = open(sinks.Overwrite)
	write(t, w, 5000, 5100)
	if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"cursor":"a"}`)}); err != nil {
		t.Fatal(err)
	}
	write(t, w, 5100, 5150)
	info, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"cursor":"b"}`), Final: true})
	if err != nil || info.Rows != 150 {
		t.Fatalf("final commit: %+v %v", info, err)
	}
	w.Abort()
	ns := all()
	if len(ns) != 150 || ns[0] != 5000 || ns[149] != 5149 {
		t.Fatalf("after the overwrite the prefix holds %d rows (%v...), want 5000..5149", len(ns), ns[:min(3, len(ns))])
	}
	if recs := keys(t, c, b, "lake/nuorder/_pipehost/commits/orders/orders/"); len(recs) != 1 {
		t.Fatalf("commit records after the overwrite: %v", recs)
	}
	if cp, _, _ := s.Checkpoint(ctx, "orders", "orders"); string(cp) != `{"cursor":"b"}` {
		t.Fatalf("checkpoint after the overwrite: %s", cp)
	}
	// An overwrite that reads nothing empties the prefix.
	w = open(sinks.Overwrite)
	if _, err := w.Commit(ctx, sinks.Commit{Checkpoint: []byte(`{"cursor":"c"}`), Final: true}); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if ns := all(); len(ns) != 0 {
		t.Fatalf("an empty overwrite left %d rows", len(ns))
	}
}
