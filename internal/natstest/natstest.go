// Package natstest runs a real NATS server with JetStream inside a test process, on a temporary
// folder, for the cluster package's tests; it can be stopped and started again on the same port
// and folder to test what happens while NATS is away.
package natstest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is one in-process NATS server.
type Server struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

// Start starts a JetStream server on a free port, stopped at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, opts: server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	}}
	s.start()
	s.opts.Port = s.srv.Addr().(*net.TCPAddr).Port // a restart comes back on the same port
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("natstest: the server did not start")
	}
	s.srv = srv
}

// URL is the client URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port) }

// Stop shuts the server down (a no-op when it is down).
func (s *Server) Stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// Restart starts the server again on the same port and folder.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}
