package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseCounts(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		err  bool
	}{
		{in: "1,2,4", want: []int{1, 2, 4}},
		{in: " 4, 1 ", want: []int{4, 1}},
		{in: "", want: nil},
		{in: "1,0", err: true},
		{in: "1,x", err: true},
		{in: "2,2", err: true},
	}
	for _, tt := range tests {
		got, err := parseCounts(tt.in)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("parseCounts(%q) = %v, %v; want %v (error: %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseParamsRows(t *testing.T) {
	cli := filepath.Join(t.TempDir(), "temporal")
	if err := os.WriteFile(cli, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TEMPORAL_CLI": cli, "TEST_AMQP_URL": "amqp://u:p@rabbit:5672/"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		args    []string
		err     string
		brokers bool
		ordered bool
		keys    int
	}{
		{args: nil, brokers: true, ordered: true, keys: 64},
		{args: []string{"-brokers=false", "-ordered-keys", "8"}, ordered: true, keys: 8},
		{args: []string{"-ordered=false"}, brokers: true, keys: 64},
		{args: []string{"-ordered-keys", "0"}, err: "-ordered-keys must be positive"},
	}
	for _, tt := range tests {
		p, err := parseParams(append([]string{"-production=false"}, tt.args...), getenv, io.Discard)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%v: error %v, want %q", tt.args, err, tt.err)
			}
		case err != nil:
			t.Errorf("%v: %v", tt.args, err)
		case p.Brokers != tt.brokers || p.Ordered != tt.ordered || p.OrderedKeys != tt.keys:
			t.Errorf("%v: brokers %v ordered %v keys %d, want %v %v %d", tt.args, p.Brokers, p.Ordered, p.OrderedKeys, tt.brokers, tt.ordered, tt.keys)
		case p.AMQPURL != "amqp://u:p@rabbit:5672/" || p.NATSURL != "nats://127.0.0.1:4222":
			t.Errorf("%v: broker URLs %q, %q: want $TEST_AMQP_URL and the default", tt.args, p.AMQPURL, p.NATSURL)
		}
	}
}
