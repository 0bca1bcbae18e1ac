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
	real, err := os.ReadFile(filepath.Join(sharedDir(t), legacyName))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(real)
	good := "squeezenet1_1_features-" + hex.EncodeToString(sum[:4]) + ".pth"
	junk := make([]byte, 5000)
	rand.New(rand.NewSource(2)).Read(junk)
	junkSum := sha256.Sum256(junk)
	junkName := "junk-" + hex.EncodeToString(junkSum[:4]) + ".pth"

	var requests atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/models/", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		name := strings.TrimPrefix(r.URL.Path, "/models/")
		switch {
		case name == good, name == "squeezenet1_1_features-deadbeef.pth", name == "plain.pth":
			w.Header().Set("Content-Length", strconv.Itoa(len(real)))
			w.Write(real)
		case name == junkName:
			w.Write(junk)
		case strings.HasPrefix(name, "truncated-"):
			// Declares the full length but sends half, then hangs up.
			w.Header().Set("Content-Length", strconv.Itoa(len(real)))
			w.Write(real[:len(real)/2])
		case strings.HasPrefix(name, "chunked-"):
			// No length at all: only the hash can tell it is short.
			w.Write(real[:len(real)/2])
			w.(http.Flusher).Flush()
		default:
			http.NotFound(w, r)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := func(name string) string { return srv.URL + "/models/" + name }

	t.Run("good", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "new", "cache") // created by Fetch
		dest := filepath.Join(dir, good)
		var calls int
		var lastDone, lastTotal int64
		err := Fetch(context.Background(), url(good), dest, func(done, total int64) {
			if done < lastDone {
				t.Errorf("progress went back from %d to %d", lastDone, done)
			}
			calls++
			lastDone, lastTotal = done, total
		})
		if err != nil {
			t.Fatal(err)
		}
		if calls < 2 || lastDone != int64(len(real)) || lastTotal != int64(len(real)) {
			t.Errorf("progress: %d calls, last (%d, %d); want final (%d, %d)", calls, lastDone, lastTotal, len(real), len(real))
		}
		got, err := os.ReadFile(dest)
		if err != nil || !bytes.Equal(got, real) {
			t.Fatalf("destination does not hold the served file (err %v)", err)
		}
		if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o644 {
			t.Errorf("destination mode %v, want 0644", fi.Mode().Perm())
		}
		c, err := Load(dest)
		if err != nil || c.Hash != hex.EncodeToString(sum[:]) {
			t.Errorf("Load(dest) = %v", err)
		}
		onlyEntries(t, dir, good)
	})

	t.Run("replaces existing file, nil progress, prefix from URL only", func(t *testing.T) {
		dir := t.TempDir()
		dest := filepath.Join(dir, "weights.pth")
		os.WriteFile(dest, []byte("old"), 0o644)
		if err := (&Fetcher{Client: srv.Client()}).Fetch(context.Background(), url(good), dest, nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, real) {
			t.Error("destination not replaced")
		}
		onlyEntries(t, dir, "weights.pth")
	})

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
		{name: "truncated body", url: url("truncated-" + good), dest: good,
			is: io.ErrUnexpectedEOF, requests: 1},
		{name: "truncated chunked body", url: url("chunked-" + good), dest: good,
			is: ErrChecksum, requests: 1},
		{name: "wrong hash prefix", url: url("squeezenet1_1_features-deadbeef.pth"), dest: "w.pth",
			is: ErrChecksum, wants: []string{"deadbeef", hex.EncodeToString(sum[:])}, requests: 1},
		{name: "destination name disagrees", url: url(good), dest: "squeezenet1_1_features-deadbeef.pth",
			wants: []string{"disagree"}, requests: 0},
		{name: "no prefix anywhere", url: url("plain.pth"), dest: "plain.pth",
			wants: []string{"SHA-256 prefix"}, requests: 0},
		{name: "404", url: url("missing-0123abcd.pth"), dest: "missing-0123abcd.pth",
			wants: []string{"404"}, requests: 1},
		{name: "too large", fetcher: Fetcher{MaxSize: 1000}, url: url(good), dest: good,
			wants: []string{"limit"}, requests: 1},
		{name: "not a checkpoint", url: url(junkName), dest: junkName,
			is: ErrNotCheckpoint, requests: 1},
		{name: "canceled", ctx: canceled, url: url(good), dest: good,
			is: context.Canceled, requests: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, tc.dest)
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			before := requests.Load()
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
			if n := requests.Load() - before; n != tc.requests {
				t.Errorf("server saw %d requests, want %d", n, tc.requests)
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Errorf("destination exists after a failure (stat: %v)", err)
			}
			onlyEntries(t, dir)
		})
	}

	t.Run("failure keeps the existing file", func(t *testing.T) {
		dir := t.TempDir()
		dest := filepath.Join(dir, good)
		os.WriteFile(dest, []byte("old"), 0o644)
		if err := Fetch(context.Background(), url("truncated-"+good), dest, nil); err == nil {
			t.Fatal("Fetch succeeded")
		}
		if got, _ := os.ReadFile(dest); string(got) != "old" {
			t.Errorf("destination changed to %d bytes", len(got))
		}
		onlyEntries(t, dir, good)
	})
}

func TestOfficialURLPrefix(t *testing.T) {
	if p, err := hashPrefix(OfficialURL, filepath.Join("cache", CacheFileName)); err != nil || p != "b8a52dc0" {
		t.Errorf("hashPrefix(OfficialURL) = %q, %v; want b8a52dc0", p, err)
	}
}
