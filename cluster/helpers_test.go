package cluster

import (
	"context"
	"testing"

	"github.com/styleproxy/styleproxy/internal/natstest"
)

// connect opens a connection to srv, closed at cleanup.
func connect(t *testing.T, srv *natstest.Server) *Conn {
	t.Helper()
	c, err := Connect(Config{URL: srv.URL(), Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func openStyles(t *testing.T, c *Conn) *StyleStore {
	t.Helper()
	s, err := OpenStyles(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
