package models_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/models"
)

// TestFunctionFlowStored: a function's flow control is stored and read
// back as it was saved, defaults filled in; removing it leaves none, and
// changing it moves the configuration version (which caches and gates
// follow).
func TestFunctionFlowStored(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		until := time.Date(2030, 1, 31, 9, 0, 0, 0, time.UTC)
		f := dispatcher.Function{Name: "guarded", URL: "http://127.0.0.1:9/guarded", Flow: dispatcher.Flow{
			RateLimit: &dispatcher.RateLimit{PerSecond: 0.5}, MaxConcurrency: 4,
			CircuitBreaker: &dispatcher.CircuitBreaker{Failures: 10, ProbeInterval: 5 * time.Second}, PausedUntil: &until}}
		if err := s.CreateFunction(ctx, &f); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindFunctionByName(ctx, "guarded")
		if err != nil {
			t.Fatal(err)
		}
		want := dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 0.5, Burst: 1}, MaxConcurrency: 4,
			CircuitBreaker: &dispatcher.CircuitBreaker{Failures: 10, Window: time.Minute, ProbeInterval: 5 * time.Second}, PausedUntil: &until}
		if !reflect.DeepEqual(got.Flow, want) {
			t.Fatalf("flow read back = %+v, want %+v", got.Flow, want)
		}
		v, _ := s.ConfigVersion(ctx)
		var none *dispatcher.RateLimit
		var noBreaker *dispatcher.CircuitBreaker
		var notPaused *time.Time
		zero := 0
		if err := errOf(s.UpdateFunction(ctx, f.ID, dispatcher.FunctionUpdate{RateLimit: &none, CircuitBreaker: &noBreaker,
			PausedUntil: &notPaused, MaxConcurrency: &zero}, time.Time{})); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.FindFunction(ctx, f.ID); got.Flow.Gated() {
			t.Errorf("flow after removing it = %+v, want none", got.Flow)
		}
		if v2, _ := s.ConfigVersion(ctx); v2 <= v {
			t.Errorf("the configuration version stayed at %d", v)
		}
	})
}
