package main

import (
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestListeningInodes(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1628 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 6717 1 00000000feededbd 100 0 0 10 0
   1: 0100007F:1628 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000   106        0 9911 1 00000000feededbd 20 4 30 10 -1
   2: 00000000:1628 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7001 1 00000000bd3609e5 100 0 0 10 0
   3: 0100007F:1108 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 10323 1 000000002a9cd5ab 100 0 0 10 0
`
	// 5672 = 0x1628: the listeners on loopback and on any address, not the
	// established connection to it (state 01) nor the listener on 4360.
	if got := listeningInodes(strings.NewReader(table), 5672); !slices.Equal(got, []string{"6717", "7001"}) {
		t.Errorf("inodes = %v, want [6717 7001]", got)
	}
	if got := listeningInodes(strings.NewReader(table), 4222); len(got) != 0 {
		t.Errorf("inodes on a port nobody listens on = %v", got)
	}
}

func TestListenerPid(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp:", err)
	}
	if got := listenerPid(net.JoinHostPort("localhost", port)); got != os.Getpid() {
		t.Errorf("listener of %s = pid %d, want this process, %d", l.Addr(), got, os.Getpid())
	}
	// Another machine's port is none of this one's processes.
	if got := listenerPid(net.JoinHostPort("192.0.2.1", port)); got != 0 {
		t.Errorf("listener on another machine = pid %d, want 0", got)
	}
	p, _ := strconv.Atoi(port)
	l.Close()
	if got := listenerPid(net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); got != 0 {
		t.Errorf("listener of a closed port = pid %d, want 0", got)
	}
}

func TestURLAddr(t *testing.T) {
	for raw, want := range map[string]string{
		"amqp://guest:guest@127.0.0.1:5672/": "127.0.0.1:5672",
		"amqp://localhost/vhost":             "localhost:5672",
		"nats://127.0.0.1:4222":              "127.0.0.1:4222",
		"nats://[::1]":                       "[::1]:5672",
		"not a url":                          "",
	} {
		if got := urlAddr(raw, "5672"); got != want {
			t.Errorf("urlAddr(%q) = %q, want %q", raw, got, want)
		}
	}
}
