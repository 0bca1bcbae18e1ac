package cluster

import (
	"testing"

	"github.com/styleproxy/styleproxy/internal/natstest"
	"github.com/styleproxy/styleproxy/styles"
	"github.com/styleproxy/styleproxy/styles/storetest"
)

// The JetStream store passes the same conformance test as the data directory, each store on
// a connection of its own, as replicas are.
func TestStyleStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		srv := natstest.Start(t)
		return func(t *testing.T) styles.Store { return openStyles(t, connect(t, srv)) }
	})
}
