package weights

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// onlyEntries fails unless dir holds exactly the given names (no
// leftover temporary files).
func onlyEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, "|") != strings.Join(names, "|") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

func TestFetch(t *testing.T) {
	f := newFetchOrigin(t)
	t.Run("good", f.fetchGood)
	t.Run("replaces existing file, nil progress, prefix from URL only", f.replaces)
	f.failures(t)
	t.Run("failure keeps the existing file", f.failureKeeps)
}

// fetchOrigin is a test server with the real checkpoint under its true name and the wrong ones
// TestFetch needs: junk, a truncated body, a short chunked one.
type fetchOrigin struct {
	real           []byte
	sum            [32]byte
	good, junkName string
	requests       atomic.Int64
	srv            *httptest.Server
}

func newFetchOrigin(t *testing.T) *fetchOrigin {
	f := &fetchOrigin{}
	var err error
	f.real, err = os.ReadFile(filepath.Join(sharedDir(t), legacyName))
	if err != nil {
		t.Fatal(err)
	}
	f.sum = sha256.Sum256(f.real)
	f.good = "squeezenet1_1_features-" + hex.EncodeToString(f.sum[:4]) + ".pth"
	junk := make([]byte, 5000)
	rand.New(rand.NewSource(2)).Read(junk)
	junkSum := sha256.Sum256(junk)
	f.junkName = "junk-" + hex.EncodeToString(junkSum[:4]) + ".pth"

	mux := http.NewServeMux()
	mux.HandleFunc("/models/", func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		name := strings.TrimPrefix(r.URL.Path, "/models/")
		switch {
		case name == f.good, name == "squeezenet1_1_features-deadbeef.pth", name == "plain.pth":
			w.Header().Set("Content-Length", strconv.Itoa(len(f.real)))
			w.Write(f.real)
		case name == f.junkName:
			w.Write(junk)
		case strings.HasPrefix(name, "truncated-"):
			// Declares the full length but sends half, then hangs up.
			w.Header().Set("Content-Length", strconv.Itoa(len(f.real)))
			w.Write(f.real[:len(f.real)/2])
		case strings.HasPrefix(name, "chunked-"):
			// No length at all: only the hash can tell it is short.
			w.Write(f.real[:len(f.real)/2])
			w.(http.Flusher).Flush()
		default:
			http.NotFound(w, r)
		}
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fetchOrigin) url(name string) string { return f.srv.URL + "/models/" + name }

func (f *fetchOrigin) fetchGood(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "cache") // created by Fetch
	dest := filepath.Join(dir, f.good)
	var calls int
	var lastDone, lastTotal int64
	err := Fetch(context.Background(), f.url(f.good), dest, func(done, total int64) {
		if done < lastDone {
			t.Errorf("progress went back from %d to %d", lastDone, done)
		}
		calls++
		lastDone, lastTotal = done, total
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls < 2 || lastDone != int64(len(f.real)) || lastTotal != int64(len(f.real)) {
		t.Errorf("progress: %d calls, last (%d, %d); want final (%d, %d)", calls, lastDone, lastTotal, len(f.real), len(f.real))
	}
	got, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(got, f.real) {
		t.Fatalf("destination does not hold the served file (err %v)", err)
	}
	if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o644 {
		t.Errorf("destination mode %v, want 0644", fi.Mode().Perm())
	}
	c, err := Load(dest)
	if err != nil || c.Hash != hex.EncodeToString(f.sum[:]) {
		t.Errorf("Load(dest) = %v", err)
	}
	onlyEntries(t, dir, f.good)
}

func (f *fetchOrigin) replaces(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "weights.pth")
	os.WriteFile(dest, []byte("old"), 0o644)
	if err := (&Fetcher{Client: f.srv.Client()}).Fetch(context.Background(), f.url(f.good), dest, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, f.real) {
		t.Error("destination not replaced")
	}
	onlyEntries(t, dir, "weights.pth")
}

// failures: every failed fetch says why, and leaves nothing behind.
func (f *fetchOrigin) failures(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		fetcher  Fetcher
		url      string
		dest     string   // file name in a fresh directory
		is       error    // errors.Is target, if any
		wants    []string // substrings of the error
		requests int64    // requests the server should see
	}{
		{name: "truncated body", url: f.url("truncated-" + f.good), dest: f.good,
			is: io.ErrUnexpectedEOF, requests: 1},
		{name: "truncated chunked body", url: f.url("chunked-" + f.good), dest: f.good,
			is: ErrChecksum, requests: 1},
		{name: "wrong hash prefix", url: f.url("squeezenet1_1_features-deadbeef.pth"), dest: "w.pth",
			is: ErrChecksum, wants: []string{"deadbeef", hex.EncodeToString(f.sum[:])}, requests: 1},
		{name: "destination name disagrees", url: f.url(f.good), dest: "squeezenet1_1_features-deadbeef.pth",
			wants: []string{"disagree"}, requests: 0},
		{name: "no prefix anywhere", url: f.url("plain.pth"), dest: "plain.pth",
			wants: []string{"SHA-256 prefix"}, requests: 0},
		{name: "404", url: f.url("missing-0123abcd.pth"), dest: "missing-0123abcd.pth",
			wants: []string{"404"}, requests: 1},
		{name: "too large", fetcher: Fetcher{MaxSize: 1000}, url: f.url(f.good), dest: f.good,
			wants: []string{"limit"}, requests: 1},
		{name: "not a checkpoint", url: f.url(f.junkName), dest: f.junkName,
			is: ErrNotCheckpoint, requests: 1},
		{name: "canceled", ctx: canceled, url: f.url(f.good), dest: f.good,
			is: context.Canceled, requests: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, tc.dest)
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			before := f.requests.Load()
			err := tc.fetcher.Fetch(ctx, tc.url, dest, nil)
			if err == nil {
				t.Fatal("Fetch succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not match %v", err, tc.is)
			}
			for _, w := range append(tc.wants, "weights: ") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if n := f.requests.Load() - before; n != tc.requests {
				t.Errorf("server saw %d requests, want %d", n, tc.requests)
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Errorf("destination exists after a failure (stat: %v)", err)
			}
			onlyEntries(t, dir)
		})
	}

}

func (f *fetchOrigin) failureKeeps(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, f.good)
	os.WriteFile(dest, []byte("old"), 0o644)
	if err := Fetch(context.Background(), f.url("truncated-"+f.good), dest, nil); err == nil {
		t.Fatal("Fetch succeeded")
	}
	if got, _ := os.ReadFile(dest); string(got) != "old" {
		t.Errorf("destination changed to %d bytes", len(got))
	}
	onlyEntries(t, dir, f.good)
}

func TestOfficialURLPrefix(t *testing.T) {
	if p, err := hashPrefix(OfficialURL, filepath.Join("cache", CacheFileName)); err != nil || p != "b8a52dc0" {
		t.Errorf("hashPrefix(OfficialURL) = %q, %v; want b8a52dc0", p, err)
	}
}
