package varnish_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/internal/testutil"
)

const adminToken = "varnish-test-token"

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// logTail is the end of a process's log file, for failure messages.
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// waitHTTP polls url until it answers 200 or the time is up.
func waitHTTP(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		res, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 within %s (last: %s)", url, within, last)
}

// startOrigin builds styleproxy and runs `styleproxy serve` on a loopback port, over a folder
// with the shared photos. It stops the server with SIGTERM when the test ends.
func startOrigin(t *testing.T, extra ...string) (base string, port int) {
	t.Helper()
	root := testutil.RepoRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "styleproxy")
	build := exec.Command("go", "build", "-o", bin, "./cmd/styleproxy")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	images := filepath.Join(dir, "images")
	if err := os.MkdirAll(images, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tubingen.jpg", "kitten.jpg", "stata.jpg"} {
		if err := os.WriteFile(filepath.Join(images, name), testutil.ReadShared(t, "images", name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port = freePort(t)
	base = "http://127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(dir, "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:" + strconv.Itoa(port), "--source", images,
		"--data", filepath.Join(dir, "data"), "--weights", testutil.Weights(t), "--backend", testutil.Backend(),
		"--admin-token", adminToken, "--max-work-px", "64"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			t.Logf("serve's log (tail):\n%s", logTail(logPath))
		}
	})
	if err := waitHTTP(base+"/healthz", 60*time.Second); err != nil {
		t.Fatalf("styleproxy serve: %v\n%s", err, logTail(logPath))
	}
	return base, port
}

// varnishd finds the varnishd binary: the test fails (never skips) without it.
func varnishd(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"varnishd", "/usr/sbin/varnishd"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("varnishd not found: install Debian's varnish and varnish-modules (make test does: make varnish)")
	return ""
}

// theVCL is deploy/varnish/styleproxy.vcl with its backend's port set to the origin's: the one
// change a test on a free port needs. Everything else is the file the README shows.
func theVCL(t *testing.T, originPort int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "deploy", "varnish", "styleproxy.vcl"))
	if err != nil {
		t.Fatal(err)
	}
	const port = `.port = "8080";`
	if n := strings.Count(string(b), port); n != 1 {
		t.Fatalf("styleproxy.vcl has %d backend ports %s, want 1", n, port)
	}
	return strings.Replace(string(b), port, fmt.Sprintf(`.port = "%d";`, originPort), 1)
}

type varnish struct {
	base, workdir, adm string
}

// startVarnish runs varnishd in the foreground on a loopback port with its own working folder,
// and waits until the origin is healthy through it.
func startVarnish(t *testing.T, originPort int) *varnish {
	t.Helper()
	bin := varnishd(t)
	// varnishd (started as root) reads the VCL and its working folder as its own user: a
	// folder everyone may read, not t.TempDir's private one.
	dir, err := os.MkdirTemp("", "styleproxy-varnish-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	vclPath := filepath.Join(dir, "styleproxy.vcl")
	if err := os.WriteFile(vclPath, []byte(theVCL(t, originPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	v := &varnish{base: "http://127.0.0.1:" + strconv.Itoa(port), workdir: filepath.Join(dir, "work")}
	args := []string{"-F", "-n", v.workdir, "-a", "127.0.0.1:" + strconv.Itoa(port), "-f", vclPath,
		"-s", "malloc,64m", "-T", "127.0.0.1:0"}
	if os.Getuid() != 0 {
		args = append(args, "-j", "none")
	}
	logPath := filepath.Join(dir, "varnishd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("varnishd cannot start: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		logf.Close()
		if t.Failed() {
			t.Logf("varnishd's log (tail):\n%s", logTail(logPath))
		}
	})
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("varnishd cannot start: %v\n%s", err, logTail(logPath))
	case <-time.After(time.Second):
	}
	v.adm = filepath.Join(filepath.Dir(bin), "..", "bin", "varnishadm")
	if _, err := os.Stat(v.adm); err != nil {
		v.adm = "varnishadm"
	}
	if err := waitHTTP(v.base+"/healthz", 60*time.Second); err != nil {
		t.Fatalf("varnishd (with deploy/varnish/styleproxy.vcl) did not serve the origin: %v\n%s", err, logTail(logPath))
	}
	return v
}

// backendHealth is the origin's health as varnishd sees it ("healthy" or "sick").
func (v *varnish) backendHealth(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(v.adm, "-n", v.workdir, "backend.list").CombinedOutput()
	if err != nil {
		t.Fatalf("varnishadm backend.list: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^\S*styleproxy\s+\S+\s+\S+\s+(\S+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("varnishadm backend.list: no styleproxy backend in\n%s", out)
	}
	return m[1]
}

// fetch sends a request with header pairs and returns the answer with its body.
func fetch(t *testing.T, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return testutil.Fetch(t, httpClient, method, url, header...)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	return testutil.Do(t, httpClient, req)
}

var httpClient = &http.Client{Timeout: 3 * time.Minute}

// register adds or replaces the style name through the admin API (which Varnish passes).
func register(t *testing.T, base, name, image, preset string, replace bool) (version string) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fields := map[string]string{"name": name, "preset": preset, "style_size": "64", "replace": strconv.FormatBool(replace)}
	for k, v := range fields {
		w.WriteField(k, v)
	}
	fw, _ := w.CreateFormFile("image", image)
	fw.Write(testutil.ReadShared(t, "images", image))
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, base+"/admin/styles", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, b := do(t, req)
	var st struct{ Version string }
	if res.StatusCode != http.StatusCreated || json.Unmarshal(b, &st) != nil || st.Version == "" {
		t.Fatalf("registering %s: %d %s", name, res.StatusCode, b)
	}
	return st.Version
}

// metric reads one sample from the origin's /metrics.
func metric(t *testing.T, origin, series string) float64 {
	t.Helper()
	_, body := fetch(t, http.MethodGet, origin+"/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// running reports whether the origin has a stylization holding a worker.
func running(t *testing.T, origin string) bool {
	t.Helper()
	_, body := fetch(t, http.MethodGet, origin+"/api/progress")
	var p struct{ Running []json.RawMessage }
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("/api/progress: %v: %s", err, body)
	}
	return len(p.Running) > 0
}
