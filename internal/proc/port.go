package proc

import "net"

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on. The
// port is left in TIME_WAIT (connected to, then closed from the listening
// side first), so the kernel does not hand it to another bind to port 0
// for a minute, while its caller still binds it by number (Go sets
// SO_REUSEADDR), as Temporal's dev server picks its own ports. Before, a
// port just released could go at once to the next process asking for any
// (a dev server of another test), and a start failed on it.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		return 0, err
	}
	s.Close() // first: this end, the port's, waits
	return l.Addr().(*net.TCPAddr).Port, nil
}
