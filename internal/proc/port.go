package proc

import "net"

// FreePort returns a loopback TCP port that was free when it looked. A
// child given it may still lose it to another process first; callers
// that can tell (StartDevServer) try again with another.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
