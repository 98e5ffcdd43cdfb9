// Package deploy holds the container and cluster files (Dockerfile at the
// root, Kubernetes manifests, systemd units); its test decodes every
// manifest strictly with the Kubernetes API types, so a typo in a field
// name fails CI instead of a deployment.
package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"pipehost/pipeline/config"
)

// objects are the manifests' objects, decoded strictly.
type objects struct {
	cronJobs    []*batchv1.CronJob
	deployments []*appsv1.Deployment
	configMaps  []*corev1.ConfigMap
	secrets     []*corev1.Secret
	services    []*corev1.Service
}

// strict decodes JSON into v, refusing fields v's type does not have.
func strict(t *testing.T, where string, doc []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

func load(t *testing.T) objects {
	t.Helper()
	files, _ := filepath.Glob("kubernetes/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/kubernetes")
	}
	var o objects
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n, part := range strings.Split(string(b), "\n---\n") {
			where := f + " document " + string(rune('1'+n))
			doc, err := yaml.YAMLToJSONStrict([]byte(part))
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var head struct{ APIVersion, Kind string }
			json.Unmarshal(doc, &head)
			switch head.APIVersion + " " + head.Kind {
			case "batch/v1 CronJob":
				v := &batchv1.CronJob{}
				strict(t, where, doc, v)
				o.cronJobs = append(o.cronJobs, v)
			case "apps/v1 Deployment":
				v := &appsv1.Deployment{}
				strict(t, where, doc, v)
				o.deployments = append(o.deployments, v)
			case "v1 ConfigMap":
				v := &corev1.ConfigMap{}
				strict(t, where, doc, v)
				o.configMaps = append(o.configMaps, v)
			case "v1 Secret":
				v := &corev1.Secret{}
				strict(t, where, doc, v)
				o.secrets = append(o.secrets, v)
			case "v1 Service":
				v := &corev1.Service{}
				strict(t, where, doc, v)
				o.services = append(o.services, v)
			default:
				t.Fatalf("%s: unexpected %s %s", where, head.APIVersion, head.Kind)
			}
		}
	}
	return o
}

// TestManifestsDecodeStrictlyAndAgree: every manifest decodes with the
// Kubernetes API types refusing unknown fields; the pipeline file in the
// ConfigMap loads; every pipeline a CronJob runs is in it; the jobs cannot
// overlap, have resources, read the credentials from the Secret and run as
// non-root; the serve Deployment exposes /metrics and probes /healthz.
func TestManifestsDecodeStrictlyAndAgree(t *testing.T) {
	o := load(t)
	if len(o.cronJobs) < 2 || len(o.deployments) != 1 || len(o.configMaps) != 1 || len(o.secrets) != 1 || len(o.services) != 1 {
		t.Fatalf("found %d cronjobs, %d deployments, %d configmaps, %d secrets, %d services",
			len(o.cronJobs), len(o.deployments), len(o.configMaps), len(o.secrets), len(o.services))
	}
	// The pods mount the Secret at /secrets beside the ConfigMap at
	// /config: the file must load with them laid out so, so every file()
	// it reads is a key of the Secret, and it reads no environment.
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "config"), 0o755)
	os.MkdirAll(filepath.Join(root, "secrets"), 0o755)
	for k, v := range o.secrets[0].StringData {
		os.WriteFile(filepath.Join(root, "secrets", k), []byte(v+"\n"), 0o600)
	}
	hcl := filepath.Join(root, "config", "pipeline.hcl")
	text := o.configMaps[0].Data["pipeline.hcl"]
	if strings.Contains(text, "env(") {
		t.Fatal("the ConfigMap's pipeline.hcl reads the environment: credentials come from the mounted Secret, with file()")
	}
	os.WriteFile(hcl, []byte(text), 0o644)
	file, diags := config.Load(hcl)
	if diags.HasErrors() {
		t.Fatalf("the ConfigMap's pipeline.hcl: %s", diags.Error())
	}
	if file.StateDSN != strings.TrimSpace(o.secrets[0].StringData["WAREHOUSE_DSN"]) {
		t.Fatal("the state block does not read WAREHOUSE_DSN from the Secret")
	}
	if file.StateBackend != "postgres" {
		t.Fatalf("state backend %q: on a cluster the state must be in PostgreSQL (locks across pods)", file.StateBackend)
	}
	secret := o.secrets[0].Name
	checkPod := func(what string, spec corev1.PodSpec) corev1.Container {
		if len(spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", what, len(spec.Containers))
		}
		c := spec.Containers[0]
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			t.Fatalf("%s: no memory limit or cpu request", what)
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			for _, v := range spec.Volumes {
				if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == secret && m.MountPath == "/secrets" && m.ReadOnly {
					mounted = true
				}
			}
		}
		if !mounted || len(c.EnvFrom) != 0 {
			t.Fatalf("%s: the Secret %s is not mounted read-only at /secrets (or the environment is filled from it)", what, secret)
		}
		if sc := spec.SecurityContext; sc == nil || sc.FSGroup == nil || *sc.FSGroup != *sc.RunAsUser {
			t.Fatalf("%s: no fsGroup for the non-root user to read the mounted Secret", what)
		}
		if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Fatalf("%s: not run as non-root", what)
		}
		return c
	}
	for _, cj := range o.cronJobs {
		if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Fatalf("cronjob %s: concurrencyPolicy %q, want Forbid", cj.Name, cj.Spec.ConcurrencyPolicy)
		}
		c := checkPod("cronjob "+cj.Name, cj.Spec.JobTemplate.Spec.Template.Spec)
		if len(c.Args) < 2 || c.Args[0] != "run" {
			t.Fatalf("cronjob %s runs %v", cj.Name, c.Args)
		}
		for _, name := range c.Args[1:] {
			if file.Pipeline(name) == nil {
				t.Fatalf("cronjob %s runs pipeline %s, which the ConfigMap's file does not declare", cj.Name, name)
			}
		}
	}
	d := o.deployments[0]
	c := checkPod("deployment "+d.Name, d.Spec.Template.Spec)
	if len(c.Args) == 0 || c.Args[0] != "serve" || !slices.Contains(c.Args, "--metrics-addr") {
		t.Fatalf("deployment %s runs %v", d.Name, c.Args)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Fatalf("deployment %s: no /healthz readiness probe", d.Name)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9464 {
		t.Fatalf("deployment %s: ports %v", d.Name, c.Ports)
	}
}

// TestAStrayFieldFailsTheManifestTest: the decoding is strict: a misspelt
// field is an error, not a silently dropped setting.
func TestAStrayFieldFailsTheManifestTest(t *testing.T) {
	doc, _ := yaml.YAMLToJSON([]byte("apiVersion: batch/v1\nkind: CronJob\nspec:\n  concurencyPolicy: Forbid\n"))
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&batchv1.CronJob{}); err == nil || !strings.Contains(err.Error(), "concurencyPolicy") {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
}

// TestTheImageIsStaticAndNonRoot: the Dockerfile builds static binaries in
// one stage (the host with cgo, for DuckDB, linked statically) and runs
// them as a non-root user on an empty base, with the plugin beside the
// host.
func TestTheImageIsStaticAndNonRoot(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d := string(b)
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "CGO_ENABLED=1", "-extldflags -static", "netgo,osusergo", "$(BIN)/static/ ./pipeline", "$(BIN)/static/ ./plugins/nuorder-plugin"} {
		if !strings.Contains(string(mk), want) {
			t.Fatalf("the Makefile's static target lacks %q", want)
		}
	}
	for _, want := range []string{"AS build", "make static BIN=/out", "/out/static/pipeline", "FROM scratch", "USER 65532", "/usr/local/bin/", "nuorder-plugin", `ENTRYPOINT ["/usr/local/bin/pipeline"]`} {
		if !strings.Contains(d, want) {
			t.Fatalf("Dockerfile lacks %q", want)
		}
	}
	for _, unit := range []string{"systemd/pipehost.service", "systemd/pipehost.timer"} {
		if _, err := os.Stat(unit); err != nil {
			t.Fatal(err)
		}
	}
}
