package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"
)

// record is a commit record: what one commit made visible, and the
// checkpoint that follows it.
type record struct {
	Pipeline    string    `json:"pipeline"`
	Stream      string    `json:"stream"`
	Seq         int64     `json:"seq"`
	Files       []object  `json:"files"`
	Rows        int64     `json:"rows"`
	Checkpoint  []byte    `json:"checkpoint,omitempty"`
	CommittedAt time.Time `json:"committed_at"`
	// Replace is set on the record of an overwrite: once its files are in
	// place, every other object of the stream's data prefix, and the
	// pipeline's older records, are removed (replace).
	Replace bool `json:"replace,omitempty"`
}

// object is one data object of a commit.
type object struct {
	Key    string `json:"key"`    // its place under P<stream>/
	Staged string `json:"staged"` // where it was uploaded before the commit
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
}

// store is one pipeline's stream in a sink: its keys and its records.
type store struct {
	s                *Sink
	c                *awss3.Client
	stream, pipeline string
}

func (s *Sink) store(c *awss3.Client, stream, pipeline string) *store {
	return &store{s: s, c: c, stream: stream, pipeline: pipeline}
}

// dataPrefix is where readers look: P<stream>/.
func (st *store) dataPrefix() string { return st.s.prefix + st.stream + "/" }

// stagingPrefix holds the stream's uploaded, uncommitted files.
func (st *store) stagingPrefix() string { return st.s.prefix + "_pipehost/staging/" + st.stream + "/" }

// stagedKey is where a data object waits for its commit. The .tmp suffix
// keeps it out of any *.parquet glob, even one over the whole prefix.
func (st *store) stagedKey(key string) string {
	return st.stagingPrefix() + strings.TrimPrefix(key, st.dataPrefix()) + ".tmp"
}

// recordsPrefix holds the pipeline's commit records of the stream.
func (st *store) recordsPrefix() string {
	return st.s.prefix + "_pipehost/commits/" + st.stream + "/" + url.PathEscape(st.pipeline) + "/"
}

// recordKey names commit seq so that newer sorts first.
func (st *store) recordKey(seq int64) string {
	return fmt.Sprintf("%s%019d.json", st.recordsPrefix(), int64(math.MaxInt64)-seq)
}

// url names an object for messages.
func (st *store) url(key string) string { return "s3://" + st.s.bucket + "/" + key }

// head returns the pipeline's newest commit record of the stream, nil when
// it has none.
func (st *store) head(ctx context.Context) (*record, error) {
	out, err := st.c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{
		Bucket: aws.String(st.s.bucket), Prefix: aws.String(st.recordsPrefix()), MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the commit records under %s: %w", st.url(st.recordsPrefix()), explain(err))
	}
	if len(out.Contents) == 0 {
		return nil, nil
	}
	key := aws.ToString(out.Contents[0].Key)
	obj, err := st.c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(st.s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("reading the commit record %s: %w", st.url(key), explain(err))
	}
	defer obj.Body.Close()
	b, err := io.ReadAll(io.LimitReader(obj.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the commit record %s: %w", st.url(key), err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("commit record %s is not one the host wrote: %w", st.url(key), err)
	}
	inv, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(key, st.recordsPrefix()), ".json"), 10, 64)
	if r.Seq != int64(math.MaxInt64)-inv || r.Pipeline != st.pipeline || r.Stream != st.stream {
		return nil, fmt.Errorf("commit record %s says it is commit %d of %s/%s: refusing it; remove it if this prefix is yours", st.url(key), r.Seq, r.Pipeline, r.Stream)
	}
	// A record names objects of the stream's own prefixes only: a planted
	// or damaged one must not make the host copy anything elsewhere.
	for _, f := range r.Files {
		if !strings.HasPrefix(f.Key, st.dataPrefix()) || strings.Contains(f.Key, "..") ||
			!strings.HasPrefix(f.Staged, st.stagingPrefix()) || f.Staged != st.stagedKey(f.Key) {
			return nil, fmt.Errorf("commit record %s names objects outside the stream's prefix (%q, %q): refusing it", st.url(key), f.Key, f.Staged)
		}
	}
	return &r, nil
}

// ErrConcurrentCommit is returned (wrapped) when another writer committed
// the sequence number a writer meant to take: two hosts ran the same
// pipeline into the same prefix. The losing commit's rows are not visible.
var ErrConcurrentCommit = errors.New("another writer committed first")

// commit puts r under its sequence number, if no one has: the commit
// point.
func (st *store) commit(ctx context.Context, r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	key := st.recordKey(r.Seq)
	_, err = st.c.PutObject(ctx, &awss3.PutObjectInput{
		Bucket: aws.String(st.s.bucket), Key: aws.String(key), Body: bytes.NewReader(b),
		ContentLength: aws.Int64(int64(len(b))), ContentType: aws.String("application/json"),
		IfNoneMatch: aws.String("*"),
	})
	if isStatus(err, 412, "PreconditionFailed") || isStatus(err, 409, "ConditionalRequestConflict") {
		return fmt.Errorf("%w: commit %d of pipeline %s (stream %s) already exists at %s; is another host running this pipeline into the same prefix? This run's rows were not made visible: %w",
			ErrConcurrentCommit, r.Seq, st.pipeline, st.stream, st.url(key), explain(err))
	}
	if err != nil {
		return fmt.Errorf("putting the commit record %s: %w", st.url(key), explain(err))
	}
	return nil
}

// inFlight bounds the requests a commit makes at once (uploads, copies,
// deletes). A commit of a date-partitioned read has one file per date, and
// each costs a few round trips; eight at once hides their latency without
// crowding a small server or the host's two cores.
const inFlight = 8

// rollForward puts the files of a committed record in place: each file
// whose staged copy is in staged (all of them when staged is nil: a commit
// this writer just made) is copied to its key, then the staged copy is
// deleted. A staged copy is deleted only after its copy succeeded, so a
// file whose staged copy is gone is in place: finishing a record costs one
// listing (staged), not a request per file. It is idempotent, so a crash in
// the middle is finished by the next call.
func (st *store) rollForward(ctx context.Context, r *record, staged map[string]time.Time) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inFlight)
	for _, f := range r.Files {
		if _, ok := staged[f.Staged]; staged != nil && !ok {
			continue
		}
		g.Go(func() error { return st.putInPlace(gctx, r, f) })
	}
	return g.Wait()
}

// putInPlace copies one staged file of a committed record to its key and
// deletes the staged copy.
func (st *store) putInPlace(ctx context.Context, r *record, f object) error {
	err := st.copy(ctx, f)
	if isNotFound(err) {
		// Another writer finished it since the listing, or the objects
		// were removed by hand: only the second loses rows.
		if _, herr := st.c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(st.s.bucket), Key: aws.String(f.Key)}); herr == nil {
			return nil
		}
		return fmt.Errorf("commit %d of pipeline %s names %s, which is neither in place nor staged at %s: the commit's rows are lost from this prefix; run with --full-refresh into a new prefix, or remove the commit record to read them again",
			r.Seq, st.pipeline, st.url(f.Key), st.url(f.Staged))
	}
	if err != nil {
		return fmt.Errorf("putting %s in place: %w", st.url(f.Key), explain(err))
	}
	st.deleteObject(ctx, f.Staged)
	return nil
}

// replace removes what a replacing record replaces: every object under the
// stream's data prefix that r does not name, then the pipeline's older
// commit records. It is idempotent, so a crash in the middle is finished by
// the next writer's Open. Readers that list the prefix meanwhile may see
// old and new objects together for that moment.
func (st *store) replace(ctx context.Context, r *record) error {
	keep := map[string]bool{}
	for _, f := range r.Files {
		keep[f.Key] = true
	}
	var gone []string
	for _, prefix := range []string{st.dataPrefix(), st.recordsPrefix()} {
		p := awss3.NewListObjectsV2Paginator(st.c, &awss3.ListObjectsV2Input{Bucket: aws.String(st.s.bucket), Prefix: aws.String(prefix)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("listing %s: %w", st.url(prefix), explain(err))
			}
			for _, o := range page.Contents {
				k := aws.ToString(o.Key)
				if !keep[k] && k != st.recordKey(r.Seq) {
					gone = append(gone, k)
				}
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inFlight)
	for _, k := range gone {
		g.Go(func() error {
			_, err := st.c.DeleteObject(gctx, &awss3.DeleteObjectInput{Bucket: aws.String(st.s.bucket), Key: aws.String(k)})
			if err != nil && !isNotFound(err) {
				return fmt.Errorf("removing %s: %w", st.url(k), explain(err))
			}
			return nil
		})
	}
	return g.Wait()
}

// stagedObjects lists the stream's staged objects, with when each was
// uploaded.
func (st *store) stagedObjects(ctx context.Context) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	p := awss3.NewListObjectsV2Paginator(st.c, &awss3.ListObjectsV2Input{Bucket: aws.String(st.s.bucket), Prefix: aws.String(st.stagingPrefix())})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the staged files under %s: %w", st.url(st.stagingPrefix()), explain(err))
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = aws.ToTime(o.LastModified)
		}
	}
	return out, nil
}

// maxCopy is the largest object one CopyObject copies (S3's limit); larger
// ones are copied in parts.
const maxCopy = 5 << 30

// copy copies a staged object to its place, server side.
func (st *store) copy(ctx context.Context, f object) error {
	src := aws.String(copySource(st.s.bucket, f.Staged))
	if f.Bytes <= st.s.maxCopy {
		_, err := st.c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String(st.s.bucket), Key: aws.String(f.Key), CopySource: src})
		return err
	}
	up, err := st.c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String(st.s.bucket), Key: aws.String(f.Key)})
	if err != nil {
		return err
	}
	part := st.s.partSize
	if f.Bytes/part >= maxParts {
		part = f.Bytes/maxParts + 1
	}
	var parts []types.CompletedPart
	for n, off := int32(1), int64(0); off < f.Bytes; n, off = n+1, off+part {
		end := min(off+part, f.Bytes) - 1
		out, err := st.c.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{
			Bucket: aws.String(st.s.bucket), Key: aws.String(f.Key), UploadId: up.UploadId, PartNumber: aws.Int32(n),
			CopySource: src, CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
		})
		if err != nil {
			st.abortUpload(ctx, f.Key, up.UploadId)
			return err
		}
		parts = append(parts, types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(n)})
	}
	_, err = st.c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket: aws.String(st.s.bucket), Key: aws.String(f.Key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		st.abortUpload(ctx, f.Key, up.UploadId)
	}
	return err
}

// abortUpload abandons a multipart upload, even when ctx is cancelled.
func (st *store) abortUpload(ctx context.Context, key string, id *string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	st.c.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{Bucket: aws.String(st.s.bucket), Key: aws.String(key), UploadId: id})
}

// copySource is CopyObject's source: bucket/key, the key URL-escaped.
func copySource(bucket, key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return bucket + "/" + strings.Join(parts, "/")
}

// staleAfter is how old a staged object or an unfinished multipart upload
// must be before a writer removes it. A live writer's uploads are minutes
// old; a day leaves a wide margin for a slow commit on another host, whose
// record would otherwise name a deleted file.
const staleAfter = 24 * time.Hour

// removeStale deletes, of the staged objects listed, those older than
// staleAfter, and the stream's multipart uploads as old: what killed runs
// left. Failures are logged only: they cost space, not correctness.
func (st *store) removeStale(ctx context.Context, staged map[string]time.Time) {
	cutoff := time.Now().Add(-staleAfter)
	removed := 0
	for key, at := range staged {
		if at.Before(cutoff) {
			if _, err := st.c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(st.s.bucket), Key: aws.String(key)}); err == nil {
				removed++
			}
		}
	}
	ups, err := st.c.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: aws.String(st.s.bucket), Prefix: aws.String(st.stagingPrefix())})
	if err == nil {
		for _, u := range ups.Uploads {
			if u.Initiated != nil && u.Initiated.Before(cutoff) {
				if _, err := st.c.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: aws.String(st.s.bucket), Key: u.Key, UploadId: u.UploadId}); err == nil {
					removed++
				}
			}
		}
	}
	if removed > 0 {
		st.s.log.Info("removed staged files a killed run left", "prefix", st.url(st.stagingPrefix()), "objects", removed)
	}
}

// Upload sizes. One PUT is the cheapest way up to a point; beyond it a
// multipart upload retries a part, not the file, and S3 caps a PUT at
// 5 GiB anyway. Parts of 16 MiB keep the requests few and the retries
// cheap; a file of more than 10,000 parts (S3's limit) gets larger parts.
const (
	multipartAbove = 64 << 20
	partSize       = 16 << 20
	maxParts       = 10_000
)

// upload puts the local file path at key.
func (st *store) upload(ctx context.Context, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size <= st.s.multipartAbove {
		_, err := st.c.PutObject(ctx, &awss3.PutObjectInput{
			Bucket: aws.String(st.s.bucket), Key: aws.String(key), Body: f, ContentLength: aws.Int64(size),
		})
		if err != nil {
			return fmt.Errorf("uploading %s: %w", st.url(key), explain(err))
		}
		return nil
	}
	part := st.s.partSize
	if size/part >= maxParts {
		part = size/maxParts + 1
	}
	up, err := st.c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String(st.s.bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("uploading %s: %w", st.url(key), explain(err))
	}
	var parts []types.CompletedPart
	for n, off := int32(1), int64(0); off < size; n, off = n+1, off+part {
		length := min(part, size-off)
		out, err := st.c.UploadPart(ctx, &awss3.UploadPartInput{
			Bucket: aws.String(st.s.bucket), Key: aws.String(key), UploadId: up.UploadId, PartNumber: aws.Int32(n),
			Body: io.NewSectionReader(f, off, length), ContentLength: aws.Int64(length),
		})
		if err != nil {
			st.abortUpload(ctx, key, up.UploadId)
			return fmt.Errorf("uploading part %d of %s: %w", n, st.url(key), explain(err))
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	}
	if _, err := st.c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket: aws.String(st.s.bucket), Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}); err != nil {
		st.abortUpload(ctx, key, up.UploadId)
		return fmt.Errorf("finishing the upload of %s: %w", st.url(key), explain(err))
	}
	return nil
}

// isStatus says whether err is an S3 answer with the HTTP status or the
// error code.
func isStatus(err error, status int, code string) bool {
	if err == nil {
		return false
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() == status {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// isNotFound says whether err is S3's answer for a missing object.
func isNotFound(err error) bool {
	var nk *types.NoSuchKey
	var nf *types.NotFound
	return errors.As(err, &nk) || errors.As(err, &nf) || isStatus(err, 404, "NoSuchKey")
}

// explain adds what to do to the S3 answers a user can act on.
func explain(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.ErrorCode() {
	case "NoSuchBucket":
		return fmt.Errorf("%w (the bucket does not exist, or is in another account or endpoint: check bucket, endpoint and region)", err)
	case "SignatureDoesNotMatch", "InvalidAccessKeyId":
		return fmt.Errorf("%w (the server refused the credentials: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile)", err)
	case "AccessDenied":
		return fmt.Errorf("%w (the credentials may not write here: the sink needs s3:ListBucket, GetObject, PutObject and DeleteObject on the prefix)", err)
	}
	return err
}

// deleteObject removes key, logging a failure: what it leaves costs space,
// and the next writer removes it after staleAfter.
func (st *store) deleteObject(ctx context.Context, key string) {
	if _, err := st.c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(st.s.bucket), Key: aws.String(key)}); err != nil && !isNotFound(err) {
		st.s.log.Warn("could not delete a staged file; the next writer removes it after a day", "object", st.url(key), "error", explain(err))
	}
}
