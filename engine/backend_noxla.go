//go:build !(((linux && amd64) || darwin) && !noxla)

package engine

// InstalledPlugins is empty where GoMLX's XLA backend is not built in.
func InstalledPlugins() []string { return nil }
