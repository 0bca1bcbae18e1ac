package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/internal/testutil"
)

// The test binary runs the real command when this variable names its arguments' count: a
// `serve` of its own process, to send signals to.
const asCommand = "STYLEPROXY_TEST_AS_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(asCommand) != "" {
		main()
		return
	}
	imaging.Startup()
	code := m.Run()
	imaging.Shutdown()
	os.Exit(code)
}

// serveProcess runs `styleproxy serve args...` as a process of its own (this test binary as
// the command), on a loopback port; it returns the base URL and the process.
func serveProcess(t *testing.T, args ...string) (string, *exec.Cmd, *os.File) {
	t.Helper()
	return commandProcess(t, "serve", args...)
}

// commandProcess runs `styleproxy command --addr ADDR args...` as serveProcess does, for any
// command with an --addr listener.
func commandProcess(t *testing.T, command string, args ...string) (string, *exec.Cmd, *os.File) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	log, err := os.CreateTemp(t.TempDir(), command+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], append([]string{command, "--addr", addr}, args...)...)
	cmd.Env = append(os.Environ(), asCommand+"=1")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		if res, err := http.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			return base, cmd, log
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("%s did not start:\n%s", command, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func metricOf(t *testing.T, base, series string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestSIGTERMWaitsForDetachedWork: a stylization whose request timed out (504) is still
// running when the server gets SIGTERM; the server waits for it, exits 0, and the result is in
// the disk cache for the next server.
func TestSIGTERMWaitsForDetachedWork(t *testing.T) {
	t.Setenv("STYLEPROXY_WEIGHTS", testutil.Weights(t))
	t.Setenv("STYLEPROXY_BACKEND", testutil.Backend())
	dir := t.TempDir()
	data, images := filepath.Join(dir, "data"), filepath.Join(dir, "images")
	os.MkdirAll(images, 0o755)
	os.WriteFile(filepath.Join(images, "tubingen.jpg"), testutil.ReadShared(t, "images", "tubingen.jpg"), 0o644)
	if code, _, stderr := runCLI(t, "styles", "add", "starry", testutil.Shared(t, "images", "starry_night.jpg"), "--data", data, "--style-size", "48"); code != 0 {
		t.Fatalf("styles add: %s", stderr)
	}
	args := []string{"--data", data, "--source", images, "--max-work-px", "64", "--drain", "60s"}

	base, cmd, log := serveProcess(t, append(args, "--timeout", "1s")...)
	const u = "/img/tubingen.jpg?style=starry&iters=150&w=64"
	res, err := http.Get(base + u)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("first request: %d, want 504 (the work takes longer than --timeout 1s)", res.StatusCode)
	}
	var progress struct{ Running []json.RawMessage }
	if res, err := http.Get(base + "/api/progress"); err == nil {
		json.NewDecoder(res.Body).Decode(&progress)
		res.Body.Close()
	}
	if len(progress.Running) != 1 {
		t.Fatalf("the detached stylization is not running after the 504 (%d running)", len(progress.Running))
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b, _ := os.ReadFile(log.Name())
		t.Fatalf("serve after SIGTERM: %v\n%s", err, b)
	}
	b, _ := os.ReadFile(log.Name())
	if !regexp.MustCompile(`"msg":"image computed".*"heavy":true`).Match(b) {
		t.Fatalf("serve exited without finishing the detached stylization:\n%s", b)
	}

	base, _, _ = serveProcess(t, args...)
	res, err = http.Get(base + u)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("after a restart: %d", res.StatusCode)
	}
	if n := metricOf(t, base, "styleproxy_optimisations_total"); n != 0 {
		t.Errorf("after a restart the image cost %v optimisations, want 0: it was not cached before the exit", n)
	}
}
