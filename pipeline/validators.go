package pipeline

import (
	"errors"
	"time"

	gocache "github.com/patrickmn/go-cache"

	"github.com/styleproxy/styleproxy/plugin"
)

// maxRemembered bounds how many paths an origin's answers are remembered for: the paths are the
// callers' to choose, and entries only expire with time.
const maxRemembered = 100_000

// originAnswers remembers, for a short while, what an HTTP origin said about each path: an
// image's version (from its validators) or that it does not exist. While an answer is fresh a
// cache hit needs no HEAD to the origin, and a missing image no round trip at all; a change at
// the origin shows once the answer expires. go-cache does the expiring.
type originAnswers struct {
	store               *gocache.Cache // path -> answer
	versionTTL, missTTL time.Duration
}

type answer struct {
	version string
	err     error // a *plugin.NotFoundError, or nil
}

// newOriginAnswers remembers versions for versionTTL and missing images for missTTL (each 0 =
// not at all); nil when both are 0.
func newOriginAnswers(versionTTL, missTTL time.Duration) *originAnswers {
	if versionTTL <= 0 && missTTL <= 0 {
		return nil
	}
	sweep := max(versionTTL, missTTL)
	return &originAnswers{store: gocache.New(gocache.NoExpiration, sweep), versionTTL: versionTTL, missTTL: missTTL}
}

// lookup returns the remembered answer for path, if one is fresh.
func (a *originAnswers) lookup(path string) (string, error, bool) {
	if a == nil {
		return "", nil, false
	}
	v, ok := a.store.Get(path)
	if !ok {
		return "", nil, false
	}
	ans := v.(answer)
	return ans.version, ans.err, true
}

// remember keeps what the origin said about path: a version, or that it is missing. Other
// failures (the origin down, a timeout) are not remembered: the next request asks again.
func (a *originAnswers) remember(path, version string, err error) {
	if a == nil || a.store.ItemCount() >= maxRemembered {
		return
	}
	var nf *plugin.NotFoundError
	switch {
	case err == nil && a.versionTTL > 0:
		a.store.Set(path, answer{version: version}, a.versionTTL)
	case errors.As(err, &nf) && a.missTTL > 0:
		a.store.Set(path, answer{err: err}, a.missTTL)
	}
}
