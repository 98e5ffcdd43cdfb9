package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"pipehost/connector/nuorder/fakeapi"
)

// otlpReceiver is a loopback OTLP/HTTP trace receiver: it keeps every span
// with the service that sent it.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []receivedSpan
}

type receivedSpan struct {
	service string
	span    *tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				o.spans = append(o.spans, receivedSpan{service, s})
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Write(b)
}

func (o *otlpReceiver) all() []receivedSpan {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]receivedSpan(nil), o.spans...)
}

// TestTracesCrossThePluginBoundary: with OTEL_EXPORTER_OTLP_ENDPOINT set, a
// run of orders through the NuOrder plugin exports the host's spans (the
// run, the pipeline, its commits) and the plugin's (its side of the read,
// each NuOrder request) to a loopback OTLP receiver, in one trace: the
// plugin's read is a child of the host's call, each NuOrder request a child
// of the plugin's read. No attribute holds a secret. Without the variable,
// nothing is sent.
func TestTracesCrossThePluginBoundary(t *testing.T) {
	t.Parallel()
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	srv := serveFake(t, fakeapi.Catalog{Seed: 61, Products: 10, Companies: 5, Orders: 200})
	path := nuorderFile(t, srv.URL(), `
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.parquet.lake
}`)
	env := append(credEnv(e2eCreds), "OTEL_EXPORTER_OTLP_ENDPOINT="+collector.URL, "OTEL_BSP_SCHEDULE_DELAY=100")
	if r := runPipeline(t, filepath.Dir(path), env, "run", "-f", path, "orders"); r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	var spans []receivedSpan
	byID := map[string]receivedSpan{}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		spans = recv.all()
		byID = map[string]receivedSpan{}
		for _, s := range spans {
			byID[string(s.span.SpanId)] = s
		}
		if len(spans) > 0 && hasSpan(spans, "nuorder-plugin", "nuorder GET ") && hasSpan(spans, "pipehost", "run") {
			break
		}
	}
	find := func(service, prefix string) receivedSpan {
		t.Helper()
		for _, s := range spans {
			if s.service == service && strings.HasPrefix(s.span.Name, prefix) {
				return s
			}
		}
		var names []string
		for _, s := range spans {
			names = append(names, s.service+": "+s.span.Name)
		}
		t.Fatalf("no %s span %q among %d:\n%s", service, prefix, len(spans), strings.Join(names, "\n"))
		return receivedSpan{}
	}
	parent := func(s receivedSpan) receivedSpan { return byID[string(s.span.ParentSpanId)] }
	run := find("pipehost", "run")
	pipeline := find("pipehost", "pipeline orders")
	commit := find("pipehost", "commit")
	read := find("nuorder-plugin", "arrow.flight.protocol.FlightService/DoGet")
	request := find("nuorder-plugin", "nuorder GET /api/orders/")
	if parent(pipeline).span != run.span || parent(commit).span != pipeline.span {
		t.Fatalf("host spans: pipeline's parent %q, commit's parent %q", parent(pipeline).span.GetName(), parent(commit).span.GetName())
	}
	call := parent(read)
	if call.span == nil || call.service != "pipehost" || string(read.span.TraceId) != string(run.span.TraceId) {
		t.Fatalf("the plugin's read is not a child of a host span in the run's trace: parent %+v", call)
	}
	for s := call; s.span != nil; s = parent(s) {
		if s.span == run.span {
			break
		}
		if len(s.span.ParentSpanId) == 0 {
			t.Fatalf("the host's call %q does not descend from the run", call.span.Name)
		}
	}
	if parent(request).span != read.span {
		t.Fatalf("a NuOrder request's parent is %q, not the plugin's read", parent(request).span.GetName())
	}
	for _, s := range spans {
		for _, a := range s.span.Attributes {
			v := a.GetValue().String()
			if strings.Contains(v, e2eCreds.ConsumerSecret) || strings.Contains(v, e2eCreds.TokenSecret) || strings.Contains(v, "oauth_signature") {
				t.Fatalf("span %q attribute %s holds a secret: %s", s.span.Name, a.Key, v)
			}
		}
	}
	t.Logf("%d spans; the plugin's read %q is a child of the host's %q", len(spans), read.span.Name, call.span.Name)

	before := len(recv.all())
	if r := runPipeline(t, filepath.Dir(path), credEnv(e2eCreds), "run", "-f", path, "orders"); r.code != 0 {
		t.Fatalf("run without OTEL: exit %d\n%s", r.code, r.stderr)
	}
	if n := len(recv.all()); n != before {
		t.Fatalf("without OTEL_EXPORTER_OTLP_ENDPOINT, %d spans were sent", n-before)
	}
}

func hasSpan(spans []receivedSpan, service, prefix string) bool {
	for _, s := range spans {
		if s.service == service && strings.HasPrefix(s.span.Name, prefix) {
			return true
		}
	}
	return false
}
