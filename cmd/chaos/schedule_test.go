package main

import (
	"reflect"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	comps := []string{compWorker, compAPI, compTemporal}
	p := plan(7, comps, 1000)
	if !reflect.DeepEqual(p, plan(7, comps, 1000)) {
		t.Fatal("the same seed gave two plans")
	}
	if reflect.DeepEqual(p, plan(8, comps, 1000)) {
		t.Error("two seeds gave the same plan")
	}
	for i, k := range p {
		centre := 250 * (i + 1)
		if k.Comp != comps[i] || k.At < centre-50 || k.At > centre+50 {
			t.Errorf("kill %d = %s at %d, want %s at %d±50", i, k.Comp, k.At, comps[i], centre)
		}
		if k.Down < 1500*time.Millisecond || k.Down > 2500*time.Millisecond {
			t.Errorf("kill %d is down %s, want 1.5–2.5 s", i, k.Down)
		}
	}
	for _, k := range plan(3, comps, 2) {
		if k.At < 1 || k.At > 2 {
			t.Errorf("with 2 events, %s strikes at %d", k.Comp, k.At)
		}
	}
}

func TestParseKills(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "worker,api,temporal", want: []string{"worker", "api", "temporal"}},
		{in: "temporal, worker", want: []string{"temporal", "worker"}},
		{in: "none"},
		{in: ""},
		{in: "worker,postgres", wantErr: true},
		{in: "api,api", wantErr: true},
	} {
		got, err := parseKills(tt.in)
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseKills(%q) = %q, %v; want %q (error: %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
