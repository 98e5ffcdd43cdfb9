package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"pipehost/sinks"
)

// Claims: a lock object per pipeline and stream, created only if absent
// (If-None-Match), renewed while the run lives and deleted at its end. A
// host that dies leaves it; it expires claimTTL after its last renewal.

// claimTTL is how long a claim outlives its last renewal; claimRenew how
// often a live run renews it. A killed run blocks the next one for at most
// claimTTL; a renewal a few seconds late on a busy host does not lose the
// claim.
const (
	claimTTL   = 90 * time.Second
	claimRenew = 20 * time.Second
)

// claimBody is the lock object's content.
type claimBody struct {
	Holder    string    `json:"holder"`
	Owner     string    `json:"owner,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (st *store) claimKey() string {
	return st.s.prefix + "_pipehost/claims/" + st.stream + "/" + url.PathEscape(st.pipeline) + ".json"
}

// Claim implements sinks.Claimer with a lock object under
// P_pipehost/claims/, created with If-None-Match so that of two hosts at the
// same moment one wins; an expired one (its holder died) is taken over.
func (s *Sink) Claim(ctx context.Context, pipeline, stream, owner, holder string) (func(), error) {
	c, err := s.s3(ctx)
	if err != nil {
		return nil, err
	}
	st := s.store(c, stream, pipeline)
	key := st.claimKey()
	put := func(ifMatch string) (string, error) {
		b, _ := json.Marshal(claimBody{Holder: holder, Owner: owner, ExpiresAt: time.Now().Add(claimTTL).UTC()})
		in := &awss3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key), Body: bytes.NewReader(b),
			ContentLength: aws.Int64(int64(len(b))), ContentType: aws.String("application/json")}
		if ifMatch == "" {
			in.IfNoneMatch = aws.String("*")
		} else {
			in.IfMatch = aws.String(ifMatch)
		}
		out, err := c.PutObject(ctx, in)
		if err != nil {
			return "", err
		}
		return aws.ToString(out.ETag), nil
	}
	etag, err := put("")
	for attempt := 0; err != nil && attempt < 2; attempt++ {
		if !isStatus(err, 412, "PreconditionFailed") && !isStatus(err, 409, "ConditionalRequestConflict") {
			return nil, fmt.Errorf("claiming %s: %w", st.url(key), explain(err))
		}
		held, tag, gerr := st.readClaim(ctx, key)
		if gerr != nil {
			return nil, gerr
		}
		// A claim of the same owner is a dead run's: this run holds the
		// owner's own lock of the pipeline, which a live one would hold.
		if held != nil && time.Now().Before(held.ExpiresAt) && (owner == "" || held.Owner != owner) {
			return nil, fmt.Errorf("%w: %s is held by %s, until %s unless renewed (%s)", sinks.ErrClaimed, s.Location(stream), held.Holder,
				held.ExpiresAt.Format(time.RFC3339), st.url(key))
		}
		// Expired (or gone meanwhile): remove it if it is still that one,
		// then create ours; of two hosts doing this, one create wins.
		if held != nil {
			s.log.Info("taking over a claim its holder left (killed?)", "claim", st.url(key), "holder", held.Holder)
			c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key), IfMatch: aws.String(tag)})
		}
		etag, err = put("")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", sinks.ErrClaimed, s.Location(stream), explain(err))
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(claimRenew)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(context.Background(), claimRenew)
				if tag, err := putRenewal(rctx, c, s.bucket, key, holder, owner, etag); err == nil {
					etag = tag
				} else {
					s.log.Warn("renewing the claim failed; it expires unless a later renewal succeeds", "claim", st.url(key), "error", explain(err))
				}
				cancel()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.DeleteObject(dctx, &awss3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	}, nil
}

// putRenewal pushes a claim's expiry forward, if the object is still the
// one this run put (If-Match), and returns its new ETag.
func putRenewal(ctx context.Context, c *awss3.Client, bucket, key, holder, owner, etag string) (string, error) {
	b, _ := json.Marshal(claimBody{Holder: holder, Owner: owner, ExpiresAt: time.Now().Add(claimTTL).UTC()})
	out, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(b),
		ContentLength: aws.Int64(int64(len(b))), ContentType: aws.String("application/json"), IfMatch: aws.String(etag)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// readClaim reads a claim object and its ETag; nil when it is gone.
func (st *store) readClaim(ctx context.Context, key string) (*claimBody, string, error) {
	obj, err := st.c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(st.s.bucket), Key: aws.String(key)})
	if isNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading the claim %s: %w", st.url(key), explain(err))
	}
	defer obj.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(obj.Body, 1<<20))
	var cb claimBody
	if json.Unmarshal(b, &cb) != nil {
		// Not ours to read: treat it as held for its TTL from its write.
		cb = claimBody{Holder: "an unreadable claim object", ExpiresAt: aws.ToTime(obj.LastModified).Add(claimTTL)}
	}
	return &cb, aws.ToString(obj.ETag), nil
}

var _ sinks.Claimer = (*Sink)(nil)
