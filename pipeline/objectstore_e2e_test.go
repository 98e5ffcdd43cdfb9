package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"pipehost/connector/nuorder/fakeapi"
)

// s3Lake is a fresh bucket on the test's S3-compatible server
// (scripts/with-s3.sh: versitygw, which checks signatures and honours
// If-None-Match), the AWS variables the host finds its credentials in, and
// a client of the test's own.
type s3Lake struct {
	endpoint, bucket, secret string
	env                      []string
	c                        *awss3.Client
}

func newS3Lake(t *testing.T) *s3Lake {
	t.Helper()
	ep := os.Getenv("PIPEHOST_TEST_S3_ENDPOINT")
	if ep == "" {
		t.Skip("PIPEHOST_TEST_S3_ENDPOINT is not set: run the tests with `make test` (scripts/with-s3.sh starts versitygw)")
	}
	key, secret := os.Getenv("PIPEHOST_TEST_S3_ACCESS_KEY_ID"), os.Getenv("PIPEHOST_TEST_S3_SECRET_ACCESS_KEY")
	l := &s3Lake{endpoint: ep, secret: secret, bucket: fmt.Sprintf("e2e%d-%d", time.Now().UnixNano(), rand.IntN(1000))}
	l.env = []string{"AWS_ACCESS_KEY_ID=" + key, "AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true"}
	l.c = awss3.New(awss3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(ep), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, ""),
	})
	if _, err := l.c.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(l.bucket)}); err != nil {
		t.Fatal(err)
	}
	return l
}

// keys lists the keys under prefix, sorted.
func (l *s3Lake) keys(t *testing.T, prefix string) []string {
	t.Helper()
	var ks []string
	p := awss3.NewListObjectsV2Paginator(l.c, &awss3.ListObjectsV2Input{Bucket: aws.String(l.bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			ks = append(ks, aws.ToString(o.Key))
		}
	}
	sort.Strings(ks)
	return ks
}

// download copies the objects under prefix into a new folder, keeping
// their keys as paths, and returns the folder.
func (l *s3Lake) download(t *testing.T, prefix string) string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range l.keys(t, prefix) {
		obj, err := l.c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(l.bucket), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.FromSlash(k))
		os.MkdirAll(filepath.Dir(path), 0o755)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(f, obj.Body)
		obj.Body.Close()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// orderIDs downloads the stream's Parquet objects and returns their _id
// values, sorted.
func (l *s3Lake) orderIDs(t *testing.T, stream string) []string {
	t.Helper()
	return l.idsUnder(t, "lake/"+stream+"/")
}

// idsUnder downloads the Parquet objects under prefix and returns their _id
// values, sorted.
func (l *s3Lake) idsUnder(t *testing.T, prefix string) []string {
	t.Helper()
	dir := l.download(t, prefix)
	var files []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") {
			files = append(files, p)
		}
		return nil
	})
	return idsIn(t, files, "_id")
}

func (l *s3Lake) file(t *testing.T, baseURL string, cat fakeapi.Catalog, pipelines string) string {
	return writeFile(t, fmt.Sprintf(`
connector "nuorder" {
  plugin = %q
  config {
    base_url           = %q
    cursor_lag_seconds = 0%s%s
  }
}
sink "s3" "lake" {
  bucket       = %q
  prefix       = "lake"
  endpoint     = %q
  partition_by = "created_on"
}
sink "s3" "flat" {
  bucket   = %q
  prefix   = "lake"
  endpoint = %q
}
%s`, plugin("nuorder"), baseURL, nuorderCreds, warehousesHCL(cat.Warehouses()), l.bucket, l.endpoint, l.bucket, l.endpoint, pipelines))
}

// TestAKilledHostNeverDuplicatesOrLosesRowsInObjectStorage: the host and
// its plugin are killed with SIGKILL before a commit, between the commit
// record and the files' copy into place, and after the sink's commit but
// before the state store's. After a rerun every order is in the lake once.
func TestAKilledHostNeverDuplicatesOrLosesRowsInObjectStorage(t *testing.T) {
	t.Parallel()
	cat := fakeapi.Catalog{Seed: 71, Products: 20, Companies: 10, Orders: 1500}
	srv := serveFake(t, cat)
	want := nonPendingOrders(cat)
	for _, fp := range []string{"before-commit", "after-s3-commit-record", "after-sink-commit"} {
		t.Run(fp, func(t *testing.T) {
			lake := newS3Lake(t)
			path := lake.file(t, srv.URL(), cat, `
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.s3.lake
}`)
			dir := filepath.Dir(path)
			env := append(credEnv(e2eCreds), lake.env...)
			killAt(t, dir, path, env, fp)
			before := lake.orderIDs(t, "orders")
			switch {
			case fp != "after-sink-commit" && len(before) != 0:
				t.Fatalf("%d rows visible though the host died before its files were in place", len(before))
			case fp == "after-sink-commit" && len(before) == 0:
				t.Fatal("nothing committed before the kill")
			case fp == "after-s3-commit-record" && len(lake.keys(t, "lake/_pipehost/staging/orders/")) == 0:
				t.Fatal("no staged file at the failpoint")
			}
			r := runPipeline(t, dir, env, "run", "-f", path, "orders")
			if r.code != 0 {
				t.Fatalf("rerun: exit %d\n%s", r.code, r.stderr)
			}
			all := lake.orderIDs(t, "orders")
			if strings.Join(all, ",") != strings.Join(want, ",") {
				t.Fatalf("after the kill (%d rows visible) and the rerun: %d rows, want the %d orders once each", len(before), len(all), len(want))
			}
			if left := lake.keys(t, "lake/_pipehost/staging/"); len(left) != 0 {
				t.Fatalf("staged objects left: %v", left)
			}
			t.Logf("%s: %d rows visible after SIGKILL, %d after the rerun, each once", fp, len(before), len(all))
		})
	}
}

// TestDuckDBReadsTheObjectStorageLake: orders land in date partitions,
// order lines (which have no created_on) in one folder; DuckDB reads what the S3 server serves (downloaded with
// GetObject: DuckDB's httpfs extension is not in its npm package and cannot
// be installed offline) with hive_partitioning, finds every order once and
// each row in the folder of its UTC created_on date. The credentials are
// printed nowhere, even at debug level.
func TestDuckDBReadsTheObjectStorageLake(t *testing.T) {
	t.Parallel()
	cat := fakeapi.Catalog{Seed: 73, Products: 20, Companies: 10, Orders: 800}
	srv := serveFake(t, cat)
	lake := newS3Lake(t)
	path := lake.file(t, srv.URL(), cat, `
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.s3.lake
}
pipeline "order_lines" {
  from = connector.nuorder.order_lines
  to   = sink.s3.flat
}`)
	dir := filepath.Dir(path)
	env := append(credEnv(e2eCreds), lake.env...)
	r := runPipeline(t, dir, env, "run", "-f", path, "--log-level", "debug")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, lake.secret) {
		t.Fatal("the run printed the AWS secret key")
	}
	if !strings.Contains(r.stderr, "s3://"+lake.bucket+"/lake/orders/") {
		t.Fatalf("the log does not say where the rows went:\n%s", r.stderr)
	}
	local := lake.download(t, "lake/")
	glob := func(stream string) string {
		return fmt.Sprintf("read_parquet('%s/lake/%s/**/*.parquet', hive_partitioning = true)", local, stream)
	}
	res := duckdb(t, []string{
		"SELECT count(*) AS n, count(DISTINCT _id) AS ids FROM " + glob("orders"),
		"SELECT count(*) AS n FROM " + glob("orders") + " WHERE created_on_date IS DISTINCT FROM CAST(timezone('UTC', created_on) AS DATE)",
		"SELECT count(DISTINCT created_on_date) AS dates FROM " + glob("orders"),
		"SELECT count(*) AS n FROM read_parquet('" + local + "/lake/order_lines/*.parquet')",
	})
	for i, q := range res {
		if q.Error != "" {
			t.Fatalf("query %d: %s", i, q.Error)
		}
	}
	want := len(nonPendingOrders(cat))
	if n, ids := fmt.Sprint(res[0].Rows[0]["n"]), fmt.Sprint(res[0].Rows[0]["ids"]); n != fmt.Sprint(want) || ids != n {
		t.Fatalf("DuckDB reads %s orders (%s distinct), want %d", n, ids, want)
	}
	if n := fmt.Sprint(res[1].Rows[0]["n"]); n != "0" {
		t.Fatalf("%s orders are outside the folder of their created_on date", n)
	}
	if d := fmt.Sprint(res[2].Rows[0]["dates"]); d == "0" || d == "1" {
		t.Fatalf("%s date partitions", d)
	}
	if n := fmt.Sprint(res[3].Rows[0]["n"]); n == "0" {
		t.Fatal("no order lines")
	}
	t.Logf("DuckDB: %v orders in %v date partitions, %v order lines", res[0].Rows[0]["n"], res[2].Rows[0]["dates"], res[3].Rows[0]["n"])
}

// TestObjectStorageExampleRunsAgainstTheSandbox: examples/lake-s3.hcl, with
// its bucket and endpoint from the environment as its comment says, loads
// every stream of the sandbox; a second run adds nothing.
func TestObjectStorageExampleRunsAgainstTheSandbox(t *testing.T) {
	lake := newS3Lake(t)
	src, err := os.ReadFile("../examples/lake-s3.hcl")
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, string(src))
	env := append([]string{"LAKE_BUCKET=" + lake.bucket, "LAKE_ENDPOINT=" + lake.endpoint}, lake.env...)
	for _, args := range [][]string{{"validate", "--sandbox"}, {"plan", "--sandbox"}, {"run", "--sandbox"}} {
		if r := runPipeline(t, filepath.Dir(path), env, append(args, "-f", path)...); r.code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	for _, stream := range []string{"companies", "products", "locations", "orders", "order_lines", "shipments"} {
		if n := len(lake.keys(t, "nuorder/"+stream+"/")); n == 0 {
			t.Fatalf("no object for %s", stream)
		}
	}
	dated := lake.keys(t, "nuorder/orders/created_on_date=")
	before := len(lake.keys(t, "nuorder/"))
	if r := runPipeline(t, filepath.Dir(path), env, "run", "--sandbox", "-f", path); r.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stderr)
	}
	if after := len(lake.keys(t, "nuorder/")); after != before {
		t.Fatalf("the second run added %d objects", after-before)
	}
	t.Logf("%d objects, %d of them orders in date folders", before, len(dated))
}
