//go:build ((linux && amd64) || darwin) && !noxla

package engine

import (
	"sort"

	"github.com/gomlx/go-xla/pkg/pjrt"
	"github.com/gomlx/gomlx/backends/xla"
)

// GoMLX's XLA backend downloads missing PJRT plugins (from GitHub and PyPI) whenever it starts,
// unless told not to; a server must not fetch native code at run time, so it never does here.
func init() { xla.EnableAutoInstall(false) }

// InstalledPlugins lists the PJRT plugins XLA can load on this host, by name ("cuda", "cpu" or
// "cpu_v0.98.0"): those in PJRT_PLUGIN_LIBRARY_PATH, or, when it is unset, in GoMLX's install
// folders (~/.local/lib/go-xla, /usr/local/lib/go-xla) and the system library folders. It looks
// on disk only.
func InstalledPlugins() []string {
	var names []string
	for name := range pjrt.AvailablePlugins() {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
