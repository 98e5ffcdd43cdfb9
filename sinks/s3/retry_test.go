package s3

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestAPutRefusedByAFolderRaceIsRetried: a server that keeps objects as
// files in folders (versitygw's posix backend, MinIO's single-drive mode)
// answers a put 409 ExistingObjectIsDirectory when another writer's delete
// removes the now-empty folder under the key at that moment (seen in CI:
// two pipelines committing into one prefix, one sweeping its staged
// uploads). The next attempt finds the folder made again; the put is
// retried like a throttle, not failed.
func TestAPutRefusedByAFolderRaceIsRetried(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	var puts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if puts.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ExistingObjectIsDirectory</Code><Message>Existing Object is a directory.</Message></Error>`)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	s := newSink(t, "b", srv.URL, nil)
	c, err := s.s3(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("lake/k"), Body: strings.NewReader("x")})
	if err != nil || puts.Load() != 2 {
		t.Fatalf("put after one folder race: %v, %d attempts (want success on the 2nd)", err, puts.Load())
	}
}
