package validate

import (
	"context"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

// loadCompose loads compose.yaml the way `docker compose config` does
// (compose-go is compose's own loader: schema validation, interpolation,
// merges), with the env files given and the profiles turned on.
func loadCompose(t *testing.T, profiles []string, envFiles ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions(
		[]string{path("deployments", "docker", "compose.yaml")},
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// composeProject is the stack as `docker compose --profile ... up` starts
// it with .env.example.
func composeProject(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	p, err := loadCompose(t, profiles, path("deployments", "docker", ".env.example"))
	if err != nil {
		t.Fatalf("compose.yaml with .env.example: %v", err)
	}
	return p
}

// TestComposeNeedsSecrets: without an .env the stack refuses to start
// rather than run with empty secrets.
func TestComposeNeedsSecrets(t *testing.T) {
	if _, err := os.Stat(path("deployments", "docker", ".env")); err == nil {
		t.Skip("deployments/docker/.env exists (a local stack): compose would read it")
	}
	_, err := loadCompose(t, nil)
	if err == nil || !strings.Contains(err.Error(), "DISPATCHER_JWT_SECRET") {
		t.Fatalf("loading compose.yaml without .env: %v, want an error naming DISPATCHER_JWT_SECRET", err)
	}
	// An .env without the encryption key's line (an older one) is
	// refused too; one that sets it to nothing, on purpose, is not.
	// Before, the missing line ran the stack in clear text.
	example, err := os.ReadFile(path("deployments", "docker", ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	for line, refused := range map[string]bool{"": true, "DISPATCHER_ENCRYPTION_KEY=\n": false} {
		var env []string
		for l := range strings.Lines(string(example)) {
			if !strings.HasPrefix(l, "DISPATCHER_ENCRYPTION_KEY=") {
				env = append(env, l)
			}
		}
		file := filepath.Join(t.TempDir(), ".env")
		if err := os.WriteFile(file, []byte(strings.Join(env, "")+line), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadCompose(t, nil, file)
		if refused != (err != nil) || refused && !strings.Contains(err.Error(), "DISPATCHER_ENCRYPTION_KEY") {
			t.Errorf("an .env with %q for the key: %v, want refused %v", line, err, refused)
		}
	}
}

// TestComposeRunCommandsStartNothingElse: a command .env.example has the
// user run before the stack has its secrets starts no other service.
// Before, its keygen line did not pass --no-deps: compose first ran the
// migrations, which refuse the file's placeholders, and the command failed.
func TestComposeRunCommandsStartNothingElse(t *testing.T) {
	example, err := os.ReadFile(path("deployments", "docker", ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	p := composeProject(t)
	runs := 0
	for l := range strings.Lines(string(example)) {
		_, cmd, ok := strings.Cut(l, "docker compose run ")
		if !ok {
			continue
		}
		runs++
		alone, svc := false, ""
		for _, a := range strings.Fields(cmd) {
			if a == "--no-deps" {
				alone = true
			} else if !strings.HasPrefix(a, "-") {
				svc = a
				break
			}
		}
		s, ok := p.Services[svc]
		if !ok {
			t.Errorf("%q runs the service %q, which compose.yaml does not have", strings.TrimSpace(l), svc)
		} else if len(s.DependsOn) > 0 && !alone {
			t.Errorf("%q starts %v first (it has no --no-deps)", strings.TrimSpace(l), slices.Sorted(maps.Keys(s.DependsOn)))
		}
	}
	if runs == 0 {
		t.Fatal(".env.example has no `docker compose run` line: the test reads nothing")
	}
}

func TestComposeServices(t *testing.T) {
	// The extra workers start only with their profile.
	want := []string{"dispatcher", "grafana", "jaeger", "mailpit", "migrate", "postgres", "prometheus", "temporal", "temporal-namespace", "temporal-schema", "temporal-ui"}
	if got := composeProject(t).ServiceNames(); !slices.Equal(sorted(got), want) {
		t.Fatalf("services %v, want %v", sorted(got), want)
	}
	p := composeProject(t, "workers")
	if got := p.ServiceNames(); !slices.Equal(sorted(got), sorted(append(want, "worker"))) {
		t.Fatalf("services with the workers profile %v, want %v and worker", sorted(got), want)
	}
	dependsOn := func(svc, on, condition string) {
		t.Helper()
		d, ok := p.Services[svc].DependsOn[on]
		if !ok || d.Condition != condition {
			t.Errorf("%s: want depends_on %s with condition %s, got %+v", svc, on, condition, d)
		}
	}
	dependsOn("temporal-schema", "postgres", types.ServiceConditionHealthy)
	dependsOn("temporal", "temporal-schema", types.ServiceConditionCompletedSuccessfully)
	dependsOn("temporal-namespace", "temporal", types.ServiceConditionHealthy)
	dependsOn("migrate", "postgres", types.ServiceConditionHealthy)
	// Each process kind registers the search attributes it needs in the
	// namespace, so neither waits for the other.
	for _, svc := range []string{"dispatcher", "worker"} {
		dependsOn(svc, "migrate", types.ServiceConditionCompletedSuccessfully)
		dependsOn(svc, "temporal-namespace", types.ServiceConditionCompletedSuccessfully)
	}

	if e := p.Services["temporal"].Environment; value(e, "DB") != "postgres12_pgx" || value(e, "POSTGRES_SEEDS") != "postgres" || value(e, "NUM_HISTORY_SHARDS") == "" {
		t.Errorf("temporal must run on the postgres service with the postgres12_pgx plugin and a fixed shard count: %v", e)
	}
}

// TestComposeDispatcher: dispatcher, worker and migrate run the image built
// from the Dockerfile with the right command, real settings only, no
// migration at start, health checks on /readyz, and addresses of services
// that exist.
func TestComposeDispatcher(t *testing.T) {
	p := composeProject(t, "workers")
	cmds := commands(t)
	for svc, cmd := range map[string]string{"dispatcher": "serve", "worker": "worker", "migrate": "migrate"} {
		s := p.Services[svc]
		if !slices.Equal(s.Command, []string{cmd}) || !slices.Contains(cmds, cmd) {
			t.Errorf("%s: command %v, want [%s]", svc, s.Command, cmd)
		}
		if s.Build == nil || s.Build.Context != filepath.Clean(mustAbs(t, root)) || s.Build.Dockerfile != "deployments/docker/Dockerfile" {
			t.Errorf("%s: build %+v, want the repository root and deployments/docker/Dockerfile", svc, s.Build)
		}
		var names []string
		for k := range s.Environment {
			names = append(names, k)
		}
		checkEnvNames(t, "compose service "+svc, sorted(names))
		wantName := "dispatcher-" + svc
		if svc == "dispatcher" {
			wantName = svc
		}
		if v := value(s.Environment, "OTEL_SERVICE_NAME"); v != wantName {
			t.Errorf("%s: OTEL_SERVICE_NAME=%q, want %s (traces tell the roles apart)", svc, v, wantName)
		}
		env := map[string]string{}
		for _, k := range []string{"DISPATCHER_SHUTDOWN_TIMEOUT", "DISPATCHER_LOCAL_ATTEMPT_TIMEOUT"} {
			env[k] = value(s.Environment, k)
		}
		if need := stopBudget(t, env); s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= need {
			t.Errorf("%s: stop_grace_period must exceed %s, how long a stopping worker may take", svc, need)
		}
		if v := value(s.Environment, "DISPATCHER_AUTO_MIGRATE"); v != "false" {
			t.Errorf("%s: DISPATCHER_AUTO_MIGRATE=%q, want false (the migrate service migrates)", svc, v)
		}
		for setting, service := range map[string]string{
			"DATABASE_URL":                "postgres",
			"TEMPORAL_ADDRESS":            "temporal",
			"DISPATCHER_SMTP_URL":         "mailpit",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "jaeger",
		} {
			raw := value(s.Environment, setting)
			if !strings.Contains(raw, "://") {
				raw = "tcp://" + raw
			}
			u, err := url.Parse(raw)
			if err != nil || u.Hostname() != service {
				t.Errorf("%s: %s=%q does not point at the %s service", svc, setting, value(s.Environment, setting), service)
			}
		}
		if svc == "migrate" {
			if s.HealthCheck == nil || !s.HealthCheck.Disable {
				t.Error("migrate: a one-shot service must not inherit the health check")
			}
			continue
		}
		if s.HealthCheck == nil || s.HealthCheck.Disable || !slices.Contains(s.HealthCheck.Test, "http://127.0.0.1:8080/readyz") ||
			value(s.Environment, "DISPATCHER_HTTP_ADDR") != ":8080" {
			t.Errorf("%s: want a health check on http://127.0.0.1:8080/readyz and DISPATCHER_HTTP_ADDR=:8080", svc)
		}
	}
	if len(p.Services["worker"].Ports) > 0 {
		t.Error("worker: publishing a port stops `--scale worker=N`")
	}
}

// TestComposeProductionUnit: the stack serves its API from `dispatcher
// serve`, whose intake starts dispatches eagerly on its own worker; no
// service runs `dispatcher api`, and the extra workers are optional.
func TestComposeProductionUnit(t *testing.T) {
	p := composeProject(t, "workers")
	for name, s := range p.Services {
		if slices.Contains(s.Command, "api") {
			t.Errorf("%s runs `dispatcher api`: the API must come with its worker (`serve`) to start dispatches eagerly", name)
		}
		for _, port := range s.Ports {
			if port.Target == 8080 && s.Build != nil && !slices.Equal(s.Command, []string{"serve"}) {
				t.Errorf("%s publishes the API port but runs %v, not serve", name, s.Command)
			}
		}
	}
	if d := p.Services["dispatcher"]; !slices.ContainsFunc(d.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == 8080 && pc.Published == "8080" }) {
		t.Errorf("dispatcher: the API is not published on 8080: %+v", d.Ports)
	}
	if w := p.Services["worker"]; !slices.Equal(w.Profiles, []string{"workers"}) {
		t.Errorf("worker: profiles %v, want [workers]: extra workers are optional", w.Profiles)
	}
}

// TestComposeMounts: every bind mount exists, Prometheus loads the shared
// alert rules and scrapes dispatcher and worker under the job names the
// rules use, Grafana gets the data source and the dashboard.
func TestComposeMounts(t *testing.T) {
	p := composeProject(t)
	mounts := map[string]map[string]string{} // service → target → source
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: bind mount source %s: %v", name, v.Source, err)
			}
			if !v.ReadOnly {
				t.Errorf("%s: bind mount %s should be read-only", name, v.Target)
			}
			if mounts[name] == nil {
				mounts[name] = map[string]string{}
			}
			mounts[name][v.Target] = v.Source
		}
	}
	same := func(got string, want ...string) bool { return got == mustAbs(t, path(want...)) }

	var prom struct {
		RuleFiles     []string       `json:"rule_files"`
		ScrapeConfigs []scrapeConfig `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readFile(t, "deployments", "docker", "prometheus.yml"), &prom); err != nil {
		t.Fatal(err)
	}
	var rulesMounted bool
	for target, source := range mounts["prometheus"] {
		if !same(source, "deployments", "prometheus", "alerts.yaml") {
			continue
		}
		for _, glob := range prom.RuleFiles {
			if ok, _ := filepath.Match(glob, target); ok {
				rulesMounted = true
			}
		}
	}
	if !rulesMounted {
		t.Errorf("prometheus: deployments/prometheus/alerts.yaml is not mounted where rule_files %v look", prom.RuleFiles)
	}
	if !same(mounts["prometheus"]["/etc/prometheus/prometheus.yml"], "deployments", "docker", "prometheus.yml") {
		t.Error("prometheus: prometheus.yml is not mounted as its configuration")
	}
	for job, service := range map[string]string{"dispatcher": "dispatcher", "dispatcher-worker": "worker"} {
		i := slices.IndexFunc(prom.ScrapeConfigs, func(c scrapeConfig) bool {
			return c.JobName == job
		})
		if i < 0 {
			t.Errorf("prometheus.yml: no job %s (the alert rules select it)", job)
			continue
		}
		c := prom.ScrapeConfigs[i]
		if c.MetricsPath != "/metrics" || len(c.DNSSD) != 1 || !slices.Equal(c.DNSSD[0].Names, []string{service}) || c.DNSSD[0].Port != 8080 {
			t.Errorf("prometheus.yml job %s: want /metrics of every %s replica on port 8080", job, service)
		}
		// /metrics answers only DISPATCHER_METRICS_TOKEN: Prometheus reads
		// it from the secret that compose makes of the same variable.
		if c.Authorization.CredentialsFile != "/run/secrets/metrics_token" {
			t.Errorf("prometheus.yml job %s: authorization.credentials_file %q, want /run/secrets/metrics_token", job, c.Authorization.CredentialsFile)
		}
	}
	if sec, ok := p.Secrets["metrics_token"]; !ok || sec.Environment != "DISPATCHER_METRICS_TOKEN" {
		t.Errorf("compose: secret metrics_token %+v, want it made of DISPATCHER_METRICS_TOKEN", sec)
	}
	if !slices.ContainsFunc(p.Services["prometheus"].Secrets, func(s types.ServiceSecretConfig) bool { return s.Source == "metrics_token" }) {
		t.Error("prometheus: does not get the secret metrics_token")
	}
	if v := value(p.Services["dispatcher"].Environment, "DISPATCHER_METRICS_TOKEN"); v == "" {
		t.Error("dispatcher: DISPATCHER_METRICS_TOKEN is not set")
	}

	var provider struct {
		Providers []struct {
			Options struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	if err := yaml.Unmarshal(readFile(t, "deployments", "docker", "grafana", "provisioning", "dashboards", "dispatcher.yaml"), &provider); err != nil {
		t.Fatal(err)
	}
	var dashboardMounted bool
	for target, source := range mounts["grafana"] {
		if same(source, "deployments", "grafana") && len(provider.Providers) == 1 &&
			strings.HasPrefix(target+"/", strings.TrimSuffix(provider.Providers[0].Options.Path, "/")+"/") {
			dashboardMounted = true
		}
	}
	if !dashboardMounted {
		t.Error("grafana: deployments/grafana is not mounted under the dashboard provider's path")
	}
	if !same(mounts["grafana"]["/etc/grafana/provisioning"], "deployments", "docker", "grafana", "provisioning") {
		t.Error("grafana: provisioning directory not mounted")
	}
	var ds struct {
		Datasources []struct {
			Type      string `json:"type"`
			URL       string `json:"url"`
			IsDefault bool   `json:"isDefault"`
		} `json:"datasources"`
	}
	if err := yaml.Unmarshal(readFile(t, "deployments", "docker", "grafana", "provisioning", "datasources", "prometheus.yaml"), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" || !ds.Datasources[0].IsDefault {
		t.Errorf("grafana data source: %+v, want the default prometheus at http://prometheus:9090", ds.Datasources)
	}
}

// scrapeConfig is the part of a Prometheus scrape config checked here.
type scrapeConfig struct {
	JobName       string `json:"job_name"`
	MetricsPath   string `json:"metrics_path"`
	Authorization struct {
		CredentialsFile string `json:"credentials_file"`
	} `json:"authorization"`
	DNSSD []struct {
		Names []string `json:"names"`
		Port  int      `json:"port"`
	} `json:"dns_sd_configs"`
}

func value(m types.MappingWithEquals, k string) string {
	if v := m[k]; v != nil {
		return *v
	}
	return ""
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestTemporalDynamicConfigsInStep: the compose stack's Temporal runs the
// dynamic config that `make temporal-pg` and the benchmark's cluster run,
// so that what docs/benchmarks.md measures is what compose deploys.
func TestTemporalDynamicConfigsInStep(t *testing.T) {
	load := func(elem ...string) map[string]any {
		var m map[string]any
		if err := yaml.Unmarshal(readFile(t, elem...), &m); err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			t.Fatalf("%s sets nothing", filepath.Join(elem...))
		}
		return m
	}
	compose := load("deployments", "docker", "temporal", "dynamicconfig.yaml")
	bench := load("deployments", "temporal", "dynamicconfig.yaml")
	for _, k := range sorted(slices.Collect(maps.Keys(bench))) {
		if !reflect.DeepEqual(compose[k], bench[k]) {
			t.Errorf("%s: compose has %v, make temporal-pg and the benchmark %v", k, compose[k], bench[k])
		}
	}
	for k := range compose {
		if _, ok := bench[k]; !ok {
			t.Errorf("%s: compose has %v, make temporal-pg and the benchmark nothing", k, compose[k])
		}
	}
}
