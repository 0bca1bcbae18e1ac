package styles_test

import (
	"testing"

	"github.com/styleproxy/styleproxy/styles"
	"github.com/styleproxy/styleproxy/styles/storetest"
)

// The data directory passes the Store conformance test, two stores on one folder standing for
// two processes.
func TestDirStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dir := t.TempDir()
		return func(t *testing.T) styles.Store {
			s, err := styles.OpenDir(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}
