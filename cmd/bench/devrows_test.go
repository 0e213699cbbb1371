package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDevServerRunsTheDeployedConfig: the dev servers of the bench get
// every setting of the deployed dynamic config, with its value, but those
// made for the PostgreSQL-backed cluster.
func TestDevServerRunsTheDeployedConfig(t *testing.T) {
	pgOnly := map[string]bool{
		"history.shardIOConcurrency": true, // overlapping writes of a shard: SQLite in memory gains nothing
	}
	b, err := os.ReadFile("../../deployments/temporal/dynamicconfig.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file map[string][]struct {
		Value       any            `yaml:"value"`
		Constraints map[string]any `yaml:"constraints"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	args := map[string]string{}
	for i := 0; i < len(deployedDynamicConfig); i += 2 {
		if deployedDynamicConfig[i] != "--dynamic-config-value" {
			t.Fatalf("argument %d is %q, want --dynamic-config-value", i, deployedDynamicConfig[i])
		}
		k, v, _ := strings.Cut(deployedDynamicConfig[i+1], "=")
		args[k] = v
	}
	for k, values := range file {
		if len(values) != 1 || len(values[0].Constraints) != 0 {
			t.Errorf("%s: %d values or constraints; the bench passes one value for all", k, len(values))
			continue
		}
		want := fmt.Sprint(values[0].Value)
		switch got, ok := args[k]; {
		case pgOnly[k] && ok:
			t.Errorf("%s is passed to the dev servers, but marked as for the PostgreSQL cluster only", k)
		case !pgOnly[k] && !ok:
			t.Errorf("%s: %s is deployed but not passed to the dev servers", k, want)
		case ok && got != want:
			t.Errorf("%s: the dev servers run with %s, the deployed config says %s", k, got, want)
		}
	}
	for k := range args {
		if _, ok := file[k]; !ok {
			t.Errorf("%s is passed to the dev servers but not deployed", k)
		}
	}
}
