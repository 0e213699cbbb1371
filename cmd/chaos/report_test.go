package main

import (
	"reflect"
	"testing"
)

func TestFigureArgs(t *testing.T) {
	got := figureArgs([]string{"-events", "2000", "-out", "docs/reliability.md", "-dir=/tmp/x", "--dir", "/tmp/y", "-seed=7"})
	want := []string{"-events", "2000", "-seed=7"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("figureArgs = %q, want %q", got, want)
	}
}
