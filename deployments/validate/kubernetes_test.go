package validate

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The kustomizations under deployments/kubernetes: all of them; the
// top-level one is the first, followed by its three parts applied in
// order; optional ones are applied on their own, after those.
var (
	kustomizations = []string{".", "setup", "app", "monitoring", "worker"}
	parts          = []string{"setup", "app", "monitoring"}
	optional       = []string{"worker"}
)

// Names the rest of the repository relies on: the alert rules select the
// jobs dispatcher and dispatcher-worker, which the Prometheus Operator
// takes from the Service names.
const (
	namespace     = "dispatcher"
	serveName     = "dispatcher" // the production unit: `dispatcher serve`
	workerName    = "dispatcher-worker"
	migrateName   = "dispatcher-migrate"
	configMapName = "dispatcher-config"
	secretName    = "dispatcher-secrets"
)

// decoder decodes the kinds the manifests may hold and fails on any field
// the typed object does not have.
var decoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		autoscalingv2.AddToScheme, policyv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}()

// object is one decoded manifest.
type object struct {
	source string // file, or kustomization and resource id
	obj    runtime.Object
}

func decode(source string, doc []byte) (object, error) {
	obj, _, err := decoder.Decode(doc, nil, nil)
	if err != nil {
		return object{}, fmt.Errorf("%s: %w", source, err)
	}
	return object{source: source, obj: obj}, nil
}

// build runs kustomize on deployments/kubernetes/<dir> and decodes every
// resource it produces.
func build(t *testing.T, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), path("deployments", "kubernetes", dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []object
	for _, r := range res.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		o, err := decode("kustomize build "+dir+": "+r.CurId().String(), doc)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// manifestFiles returns every YAML file under deployments/kubernetes but
// the kustomization files.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(path("deployments", "kubernetes"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".yaml") && d.Name() != "kustomization.yaml" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// splitYAML splits a multi-document YAML file.
func splitYAML(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func TestManifestsDecodeStrictly(t *testing.T) {
	files := manifestFiles(t)
	if len(files) < 9 {
		t.Fatalf("found only %d manifests: %v", len(files), files)
	}
	for _, f := range files {
		for i, doc := range splitYAML(readFile(t, strings.TrimPrefix(f, root+"/"))) {
			if _, err := decode(fmt.Sprintf("%s #%d", f, i+1), doc); err != nil {
				t.Error(err)
			}
		}
	}
}

// TestDecoderIsStrict proves the check above can fail: a misspelt field
// and an unknown kind are errors.
func TestDecoderIsStrict(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n",
		"wrong type":    "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: 80\n",
		"unknown kind":  "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n",
		"unknown field in a CRD type": "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n" +
			"metadata: {name: x}\nspec:\n  endpoint: [{port: http}]\n",
	} {
		if _, err := decode(name, []byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// TestKustomizationsListEveryFile: a manifest no kustomization lists would
// silently never be applied.
func TestKustomizationsListEveryFile(t *testing.T) {
	listed := map[string]bool{}
	for _, dir := range kustomizations {
		var k types.Kustomization
		b := readFile(t, "deployments", "kubernetes", dir, "kustomization.yaml")
		if err := yaml.UnmarshalStrict(b, &k); err != nil {
			t.Fatalf("%s/kustomization.yaml: %v", dir, err)
		}
		for _, r := range k.Resources {
			listed[filepath.Clean(path("deployments", "kubernetes", dir, r))] = true
		}
	}
	for _, f := range manifestFiles(t) {
		if filepath.Base(filepath.Dir(f)) == "image" {
			continue
		}
		if !listed[filepath.Clean(f)] {
			t.Errorf("%s is in no kustomization's resources", f)
		}
	}
}

// TestKustomizationParts: the top-level kustomization is exactly its three
// parts, and each part builds on its own (kubectl applies them in order);
// the optional ones are not in it.
func TestKustomizationParts(t *testing.T) {
	ids := func(objs []object) []string {
		var out []string
		for _, o := range objs {
			m := o.obj.(metav1.Object)
			out = append(out, o.obj.GetObjectKind().GroupVersionKind().Kind+"/"+m.GetNamespace()+"/"+m.GetName())
		}
		slices.Sort(out)
		return out
	}
	var inParts []string
	for _, dir := range parts {
		inParts = append(inParts, ids(build(t, dir))...)
	}
	slices.Sort(inParts)
	if all := ids(build(t, ".")); !slices.Equal(all, inParts) {
		t.Errorf("top-level build\n  %v\nparts\n  %v", all, inParts)
	}
	for _, dir := range optional {
		if objs := build(t, dir); len(objs) == 0 {
			t.Errorf("optional kustomization %s builds nothing", dir)
		}
	}
}

// cluster is the decoded top-level build plus the optional parts (a
// cluster where all of them were applied), by kind.
type cluster struct {
	deployments  []*appsv1.Deployment
	jobs         []*batchv1.Job
	services     []*corev1.Service
	configMaps   []*corev1.ConfigMap
	secrets      []*corev1.Secret
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	pdbs         []*policyv1.PodDisruptionBudget
	monitors     []*monitoringv1.ServiceMonitor
	rules        []*monitoringv1.PrometheusRule
	namespaces   []*corev1.Namespace
	all          []object
	podTemplates map[string]*corev1.PodTemplateSpec // by workload name
}

func loadCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{podTemplates: map[string]*corev1.PodTemplateSpec{}}
	objs := build(t, ".")
	for _, dir := range optional {
		objs = append(objs, build(t, dir)...)
	}
	for _, o := range objs {
		c.all = append(c.all, o)
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			c.deployments = append(c.deployments, v)
			c.podTemplates[v.Name] = &v.Spec.Template
		case *batchv1.Job:
			c.jobs = append(c.jobs, v)
			c.podTemplates[v.Name] = &v.Spec.Template
		case *corev1.Service:
			c.services = append(c.services, v)
		case *corev1.ConfigMap:
			c.configMaps = append(c.configMaps, v)
		case *corev1.Secret:
			c.secrets = append(c.secrets, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			c.hpas = append(c.hpas, v)
		case *policyv1.PodDisruptionBudget:
			c.pdbs = append(c.pdbs, v)
		case *monitoringv1.ServiceMonitor:
			c.monitors = append(c.monitors, v)
		case *monitoringv1.PrometheusRule:
			c.rules = append(c.rules, v)
		case *corev1.Namespace:
			c.namespaces = append(c.namespaces, v)
		default:
			t.Errorf("%s: unexpected kind %T", o.source, o.obj)
		}
	}
	return c
}

func (c *cluster) deployment(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	for _, d := range c.deployments {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no Deployment %s", name)
	return nil
}

func TestEverythingInOneNamespace(t *testing.T) {
	c := loadCluster(t)
	if len(c.namespaces) != 1 || c.namespaces[0].Name != namespace {
		t.Fatalf("want one Namespace %q, got %v", namespace, c.namespaces)
	}
	for _, o := range c.all {
		m := o.obj.(metav1.Object)
		if _, isNS := o.obj.(*corev1.Namespace); !isNS && m.GetNamespace() != namespace {
			t.Errorf("%s is in namespace %q, want %q", o.source, m.GetNamespace(), namespace)
		}
	}
	want := []string{serveName, workerName}
	for _, kind := range []struct {
		what  string
		names []string
	}{
		{"Deployments", names(c.deployments)}, {"Services", names(c.services)},
		{"PodDisruptionBudgets", names(c.pdbs)}, {"HorizontalPodAutoscalers", names(c.hpas)},
	} {
		if !slices.Equal(kind.names, want) {
			t.Errorf("%s: %v, want %v", kind.what, kind.names, want)
		}
	}
	if got := names(c.jobs); !slices.Equal(got, []string{migrateName}) {
		t.Errorf("Jobs: %v, want [%s]", got, migrateName)
	}
}

func names[T metav1.Object](objs []T) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetName())
	}
	slices.Sort(out)
	return out
}

// TestPodsAreHardened: every pod runs as non-root with a read-only root
// file system, no privilege escalation, no capabilities, and sized
// resources.
func TestPodsAreHardened(t *testing.T) {
	c := loadCluster(t)
	for name, tmpl := range c.podTemplates {
		pod := tmpl.Spec
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken must be false (the dispatcher never calls the Kubernetes API)", name)
		}
		psc := pod.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Errorf("%s: pod securityContext must set runAsNonRoot: true and a non-zero runAsUser", name)
		}
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod securityContext must use the RuntimeDefault seccomp profile", name)
		}
		for _, ctr := range append(pod.InitContainers, pod.Containers...) {
			where := name + "/" + ctr.Name
			sc := ctr.SecurityContext
			switch {
			case sc == nil:
				t.Errorf("%s: no securityContext", where)
				continue
			case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
				t.Errorf("%s: runAsNonRoot must be true", where)
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Errorf("%s: readOnlyRootFilesystem must be true", where)
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Errorf("%s: allowPrivilegeEscalation must be false", where)
			case sc.Privileged != nil && *sc.Privileged:
				t.Errorf("%s: privileged", where)
			case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
				t.Errorf("%s: capabilities must drop ALL and add none", where)
			}
			r := ctr.Resources
			if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
				t.Errorf("%s: needs cpu and memory requests and a memory limit", where)
			}
		}
	}
}

// TestImagesPinned: every container runs the image named in the image
// component, with a tag that is not `latest`, in the raw files and after
// kustomize.
func TestImagesPinned(t *testing.T) {
	var comp types.Kustomization
	if err := yaml.UnmarshalStrict(readFile(t, "deployments", "kubernetes", "image", "kustomization.yaml"), &comp); err != nil {
		t.Fatal(err)
	}
	if len(comp.Images) != 1 || comp.Images[0].NewTag == "" || comp.Images[0].NewTag == "latest" || comp.Images[0].NewName != "" {
		t.Fatalf("image component: want one image with a pinned newTag, got %+v", comp.Images)
	}
	want := comp.Images[0].Name + ":" + comp.Images[0].NewTag

	check := func(where string, tmpl *corev1.PodTemplateSpec) {
		for _, ctr := range tmpl.Spec.Containers {
			if ctr.Image != want {
				t.Errorf("%s/%s: image %q, want %q (the image component's)", where, ctr.Name, ctr.Image, want)
			}
			if strings.HasSuffix(ctr.Image, ":latest") || !strings.Contains(ctr.Image[strings.LastIndex(ctr.Image, "/")+1:], ":") {
				t.Errorf("%s/%s: image %q must carry a tag that is not latest", where, ctr.Name, ctr.Image)
			}
		}
	}
	for name, tmpl := range loadCluster(t).podTemplates {
		check("kustomize build: "+name, tmpl)
	}
	for _, f := range manifestFiles(t) {
		for _, doc := range splitYAML(readFile(t, strings.TrimPrefix(f, root+"/"))) {
			o, err := decode(f, doc)
			if err != nil {
				t.Fatal(err)
			}
			switch v := o.obj.(type) {
			case *appsv1.Deployment:
				check(f, &v.Spec.Template)
			case *batchv1.Job:
				check(f, &v.Spec.Template)
			}
		}
	}
}

// TestCommandsAndProbes: the production unit, the worker Deployment and
// the Job run the right subcommand; the long-running ones are probed on /healthz
// (liveness) and /readyz (readiness) on a port the container declares.
func TestCommandsAndProbes(t *testing.T) {
	c := loadCluster(t)
	cmds := commands(t)
	wantCmd := map[string]string{serveName: "serve", workerName: "worker", migrateName: "migrate"}
	for name, tmpl := range c.podTemplates {
		if len(tmpl.Spec.Containers) != 1 {
			t.Errorf("%s: want one container", name)
			continue
		}
		ctr := tmpl.Spec.Containers[0]
		if len(ctr.Command) > 0 || len(ctr.Args) != 1 || ctr.Args[0] != wantCmd[name] || !slices.Contains(cmds, ctr.Args[0]) {
			t.Errorf("%s: command %v args %v, want args [%s] and the image's entrypoint", name, ctr.Command, ctr.Args, wantCmd[name])
		}
	}
	for _, name := range []string{serveName, workerName} {
		ctr := c.deployment(t, name).Spec.Template.Spec.Containers[0]
		ports := map[string]int32{}
		for _, p := range ctr.Ports {
			ports[p.Name] = p.ContainerPort
		}
		for _, p := range []struct {
			what  string
			probe *corev1.Probe
			path  string
		}{
			{"liveness", ctr.LivenessProbe, "/healthz"},
			{"readiness", ctr.ReadinessProbe, "/readyz"},
			{"startup", ctr.StartupProbe, "/healthz"},
		} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", name, p.what)
				continue
			}
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("%s: %s probe on %s, want %s", name, p.what, p.probe.HTTPGet.Path, p.path)
			}
			if _, ok := ports[p.probe.HTTPGet.Port.StrVal]; !ok || p.probe.HTTPGet.Port.Type != intstr.String {
				t.Errorf("%s: %s probe port %v is not a named port of the container", name, p.what, p.probe.HTTPGet.Port)
			}
		}
		if ports["http"] != 8080 {
			t.Errorf("%s: port http = %d, want 8080 (DISPATCHER_HTTP_ADDR)", name, ports["http"])
		}
	}
	job := c.jobs[0]
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever || job.Spec.BackoffLimit == nil {
		t.Errorf("%s: want restartPolicy Never and a backoffLimit", migrateName)
	}
}

// TestConfiguration: every variable the manifests set is a setting of the
// binary, secrets live in the Secret only, migrations do not run at start.
func TestConfiguration(t *testing.T) {
	c := loadCluster(t)
	if len(c.configMaps) != 1 || len(c.secrets) != 1 {
		t.Fatalf("want one ConfigMap and one Secret, got %d and %d", len(c.configMaps), len(c.secrets))
	}
	cm, sec := c.configMaps[0], c.secrets[0]
	if cm.Name != configMapName || sec.Name != secretName {
		t.Fatalf("ConfigMap %s, Secret %s; want %s, %s", cm.Name, sec.Name, configMapName, secretName)
	}
	checkEnvNames(t, "ConfigMap "+cm.Name, slices.Sorted(maps.Keys(cm.Data)))
	secretKeys := slices.Sorted(maps.Keys(sec.StringData))
	secretKeys = append(secretKeys, slices.Sorted(maps.Keys(sec.Data))...)
	checkEnvNames(t, "Secret "+sec.Name, secretKeys)

	for _, k := range []string{"DATABASE_URL", "DISPATCHER_JWT_SECRET", "DISPATCHER_SMTP_URL", "DISPATCHER_METRICS_TOKEN"} {
		if _, inCM := cm.Data[k]; inCM {
			t.Errorf("%s is in the ConfigMap: it may hold credentials, keep it in the Secret", k)
		}
		if !slices.Contains(secretKeys, k) {
			t.Errorf("Secret lacks %s", k)
		}
	}
	for k, v := range sec.StringData {
		if !strings.Contains(v, "CHANGE-ME") {
			t.Errorf("Secret %s: the committed value must be a CHANGE-ME placeholder", k)
		}
	}
	if cm.Data["DISPATCHER_AUTO_MIGRATE"] != "false" {
		t.Error("DISPATCHER_AUTO_MIGRATE must be false: the migration Job migrates")
	}
	if cm.Data["DISPATCHER_HTTP_ADDR"] != ":8080" {
		t.Errorf("DISPATCHER_HTTP_ADDR = %q, want :8080 (the container port)", cm.Data["DISPATCHER_HTTP_ADDR"])
	}
	for name, tmpl := range c.podTemplates {
		for _, ctr := range tmpl.Spec.Containers {
			var env []string
			for _, e := range ctr.Env {
				env = append(env, e.Name)
				if e.Name == "OTEL_SERVICE_NAME" && e.Value != name {
					t.Errorf("%s: OTEL_SERVICE_NAME=%q, want %q (traces tell the roles apart)", name, e.Value, name)
				}
			}
			if !slices.Contains(env, "OTEL_SERVICE_NAME") {
				t.Errorf("%s: no OTEL_SERVICE_NAME: its traces would not say which role sent them", name)
			}
			checkEnvNames(t, name, env)
			var refs []string
			for _, ef := range ctr.EnvFrom {
				switch {
				case ef.ConfigMapRef != nil:
					refs = append(refs, "configmap/"+ef.ConfigMapRef.Name)
				case ef.SecretRef != nil:
					refs = append(refs, "secret/"+ef.SecretRef.Name)
				}
			}
			if want := []string{"configmap/" + configMapName, "secret/" + secretName}; !slices.Equal(refs, want) {
				t.Errorf("%s: envFrom %v, want %v", name, refs, want)
			}
		}
	}
	// A stopping pod's worker lets its first attempts end, then its
	// regular activities, each for up to the worker's stop timeout, beside
	// the HTTP drain and after its preStop hook: Kubernetes must not kill
	// it before.
	need := stopBudget(t, cm.Data)
	for _, name := range []string{serveName, workerName} {
		pod := c.deployment(t, name).Spec.Template.Spec
		need := need
		if ps := pod.Containers[0].Lifecycle; ps != nil && ps.PreStop != nil && ps.PreStop.Sleep != nil {
			need += time.Duration(ps.PreStop.Sleep.Seconds) * time.Second
		}
		if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= need {
			t.Errorf("%s: terminationGracePeriodSeconds must exceed preStop + %s", name, need)
		}
	}
}

// stopBudget is the longest a stopping process takes with the settings
// env (defaults where unset): twice the worker's stop timeout, which is
// the longer of DISPATCHER_SHUTDOWN_TIMEOUT and
// DISPATCHER_LOCAL_ATTEMPT_TIMEOUT + 5 s (cmd/dispatcher's
// workerStopTimeout); the HTTP drain runs beside it.
func stopBudget(t *testing.T, env map[string]string) time.Duration {
	t.Helper()
	setting := func(name, def string) time.Duration {
		v := env[name]
		if v == "" {
			v = def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return d
	}
	return 2 * max(setting("DISPATCHER_SHUTDOWN_TIMEOUT", "20s"), setting("DISPATCHER_LOCAL_ATTEMPT_TIMEOUT", "1m")+5*time.Second)
}

// TestSelectors: Services, PodDisruptionBudgets, the HPA and the
// ServiceMonitor all point at objects that exist.
func TestSelectors(t *testing.T) {
	c := loadCluster(t)
	podsOf := func(sel labels.Selector) []string {
		var out []string
		for _, d := range c.deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				out = append(out, d.Name)
			}
		}
		return out
	}
	for _, d := range c.deployments {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s: selector does not match its own pods", d.Name)
		}
		if got := podsOf(sel); !slices.Equal(got, []string{d.Name}) {
			t.Errorf("Deployment %s: selector also matches %v", d.Name, got)
		}
	}
	for _, s := range c.services {
		if got := podsOf(labels.SelectorFromSet(s.Spec.Selector)); !slices.Equal(got, []string{s.Name}) {
			t.Errorf("Service %s selects the pods of %v, want [%s]", s.Name, got, s.Name)
			continue
		}
		ctr := c.deployment(t, s.Name).Spec.Template.Spec.Containers[0]
		for _, p := range s.Spec.Ports {
			if !slices.ContainsFunc(ctr.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.StrVal }) {
				t.Errorf("Service %s: targetPort %v is not a named container port", s.Name, p.TargetPort)
			}
		}
	}
	for _, p := range c.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if got := podsOf(sel); !slices.Equal(got, []string{p.Name}) {
			t.Errorf("PodDisruptionBudget %s selects %v, want [%s]", p.Name, got, p.Name)
		}
	}
	// Each Deployment has its autoscaler, named after it; the production
	// unit keeps two pods at least, so one can stop while the other takes
	// events.
	for _, hpa := range c.hpas {
		if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != hpa.Name || ref.APIVersion != "apps/v1" {
			t.Errorf("HPA %s scales %+v, want the Deployment of its name", hpa.Name, ref)
			continue
		}
		least := int32(1)
		if hpa.Name == serveName {
			least = 2
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < least || hpa.Spec.MaxReplicas <= *hpa.Spec.MinReplicas {
			t.Errorf("HPA %s: want minReplicas >= %d and maxReplicas above it", hpa.Name, least)
		}
		if len(hpa.Spec.Metrics) == 0 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
			t.Errorf("HPA %s: want a CPU resource metric", hpa.Name)
		}
		if d := c.deployment(t, hpa.Name); d.Spec.Replicas != nil {
			// Each apply or sync would reset what the HPA scaled to.
			t.Errorf("%s: replicas %d beside its HPA; leave the count to the HPA", hpa.Name, *d.Spec.Replicas)
		}
		if c.deployment(t, hpa.Name).Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().IsZero() {
			t.Errorf("%s: the CPU-based HPA needs a CPU request", hpa.Name)
		}
	}

	if len(c.monitors) != 1 {
		t.Fatalf("want one ServiceMonitor, got %d", len(c.monitors))
	}
	sm := c.monitors[0]
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	var scraped []string
	for _, s := range c.services {
		if !sel.Matches(labels.Set(s.Labels)) {
			continue
		}
		scraped = append(scraped, s.Name)
		for _, ep := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				t.Errorf("ServiceMonitor endpoint port %q is not a port of Service %s", ep.Port, s.Name)
			}
		}
	}
	if want := []string{serveName, workerName}; !slices.Equal(scraped, want) {
		t.Errorf("ServiceMonitor scrapes Services %v, want %v", scraped, want)
	}
	for _, ep := range sm.Spec.Endpoints {
		if ep.Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoint path %q, want /metrics", ep.Path)
		}
		// /metrics answers only DISPATCHER_METRICS_TOKEN, which the pods
		// read from the Secret: the scrape must send the same key.
		a := ep.Authorization
		if a == nil || !strings.EqualFold(a.Type, "Bearer") || a.Credentials == nil ||
			a.Credentials.Name != secretName || a.Credentials.Key != "DISPATCHER_METRICS_TOKEN" {
			t.Errorf("ServiceMonitor endpoint authorization %+v, want Bearer from Secret %s key DISPATCHER_METRICS_TOKEN", a, secretName)
		}
	}
}

// TestProductionUnit: the API is served by `dispatcher serve` only. The
// intake's first workflow task then runs on the worker of the process that
// started it (eager workflow start); a Deployment running `dispatcher api`
// behind the Service would pay a round trip through Temporal per dispatch
// and halve the throughput (docs/operations.md, "The production unit").
func TestProductionUnit(t *testing.T) {
	args := func(tmpl *corev1.PodTemplateSpec) []string { return tmpl.Spec.Containers[0].Args }
	// What the top-level kustomization applies on its own must be a whole
	// dispatcher: the serve Deployment, not an API that needs workers.
	var top []string
	for _, o := range build(t, ".") {
		if d, ok := o.obj.(*appsv1.Deployment); ok {
			top = append(top, d.Name)
			if !slices.Equal(args(&d.Spec.Template), []string{"serve"}) {
				t.Errorf("the top-level kustomization's Deployment %s runs %v, want [serve]", d.Name, args(&d.Spec.Template))
			}
		}
	}
	if !slices.Equal(top, []string{serveName}) {
		t.Errorf("the top-level kustomization deploys %v, want only the production unit [%s]", top, serveName)
	}

	c := loadCluster(t)
	for name, tmpl := range c.podTemplates {
		if slices.Contains(args(tmpl), "api") {
			t.Errorf("%s runs `dispatcher api`: the API must come with its worker (`serve`) to start dispatches eagerly", name)
		}
	}
	// A Service that takes traffic (not headless) leads to serve pods only;
	// the workers' Service exists for scraping and is headless.
	served := false
	for _, s := range c.services {
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		for _, d := range c.deployments {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				served = true
				if !slices.Equal(args(&d.Spec.Template), []string{"serve"}) {
					t.Errorf("Service %s sends traffic to Deployment %s, which runs %v, not serve", s.Name, d.Name, args(&d.Spec.Template))
				}
			}
		}
	}
	if !served {
		t.Error("no Service sends traffic to the serve Deployment")
	}
	if s := c.deployment(t, workerName); !slices.Equal(args(&s.Spec.Template), []string{"worker"}) {
		t.Errorf("%s runs %v, want [worker]", workerName, args(&s.Spec.Template))
	}
}

// TestGitOpsOrder: under Argo CD, the migration Job runs after the
// ConfigMap and Secret it reads exist and before the Deployments change;
// under Flux, a new image recreates the Job, whose pod template cannot
// change. Before, the Job was a PreSync hook, which runs before any of
// the sync's resources: a first sync waited for a ConfigMap that only the
// sync after it would create, until the Job's deadline failed the sync.
func TestGitOpsOrder(t *testing.T) {
	c := loadCluster(t)
	wave := func(o metav1.Object) int {
		v, ok := o.GetAnnotations()["argocd.argoproj.io/sync-wave"]
		if !ok {
			return 0
		}
		var w int
		if _, err := fmt.Sscan(v, &w); err != nil {
			t.Fatalf("%s: sync-wave %q", o.GetName(), v)
		}
		return w
	}
	if len(c.jobs) != 1 {
		t.Fatalf("want one Job, got %d", len(c.jobs))
	}
	job := c.jobs[0]
	a := job.Annotations
	if a["argocd.argoproj.io/hook"] != "Sync" || a["argocd.argoproj.io/hook-delete-policy"] != "BeforeHookCreation" {
		t.Errorf("Job %s: Argo CD hook %q, delete policy %q; want a Sync hook replaced at each sync", job.Name,
			a["argocd.argoproj.io/hook"], a["argocd.argoproj.io/hook-delete-policy"])
	}
	if a["kustomize.toolkit.fluxcd.io/force"] != "enabled" {
		t.Errorf("Job %s: Flux cannot apply a new image to it without kustomize.toolkit.fluxcd.io/force: enabled", job.Name)
	}
	for _, o := range []metav1.Object{c.configMaps[0], c.secrets[0]} {
		if wave(o) >= wave(job) {
			t.Errorf("%s: sync wave %d, want it before the Job's %d, which reads it", o.GetName(), wave(o), wave(job))
		}
	}
	for _, d := range c.deployments {
		if wave(d) <= wave(job) {
			t.Errorf("Deployment %s: sync wave %d, want it after the Job's %d", d.Name, wave(d), wave(job))
		}
	}
}

// TestDatabaseConnectionBudget: the ConfigMap bounds each pod's
// connections, and the budget its comment and the prerequisites give
// (every pod the autoscalers allow) is the one the manifests make.
// Before, each pod could open 32, 640 for the autoscalers' 20 pods,
// against PostgreSQL's default of 100, and no prerequisite said so.
func TestDatabaseConnectionBudget(t *testing.T) {
	c := loadCluster(t)
	var conns int
	if _, err := fmt.Sscan(c.configMaps[0].Data["DISPATCHER_DB_MAX_CONNS"], &conns); err != nil || conns < 2 {
		t.Fatalf("DISPATCHER_DB_MAX_CONNS = %q: set it in the ConfigMap", c.configMaps[0].Data["DISPATCHER_DB_MAX_CONNS"])
	}
	pods := 0
	for _, h := range c.hpas {
		pods += int(h.Spec.MaxReplicas)
	}
	budget := fmt.Sprintf("%d", pods*conns)
	config := string(readFile(t, "deployments", "kubernetes", "setup", "config.yaml"))
	if !strings.Contains(config, fmt.Sprintf("%d x %d = %s connections", pods, conns, budget)) {
		t.Errorf("setup/config.yaml does not give the budget %d pods x %d = %s connections", pods, conns, budget)
	}
	docs := string(readFile(t, "docs", "operations.md"))
	if !strings.Contains(docs, "each "+fmt.Sprint(conns)+", `DISPATCHER_DB_MAX_CONNS`") || !strings.Contains(docs, ": "+budget+", beside Temporal's") {
		t.Errorf("docs/operations.md's Kubernetes prerequisites do not give %d connections a pod, %s in all", conns, budget)
	}
}
