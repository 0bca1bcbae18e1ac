package main

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/internal/testutil"
)

// natsProcess is a nats-server process (Debian's package) with JetStream on a temporary folder,
// which the test can stop and start again on the same port and folder.
type natsProcess struct {
	t         *testing.T
	bin, port string
	dir       string
	cmd       *exec.Cmd
}

func startNATS(t *testing.T) *natsProcess {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin = "/usr/sbin/nats-server"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("nats-server is not installed (make test installs Debian's nats-server): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	n := &natsProcess{t: t, bin: bin, port: port, dir: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsProcess) url() string { return "nats://127.0.0.1:" + n.port }

func (n *natsProcess) start() {
	n.t.Helper()
	n.cmd = exec.Command(n.bin, "-a", "127.0.0.1", "-p", n.port, "-js", "-sd", n.dir)
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+n.port); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatal("nats-server did not start")
		}
	}
}

func (n *natsProcess) stop() {
	if n.cmd != nil {
		n.cmd.Process.Signal(syscall.SIGTERM)
		n.cmd.Wait()
		n.cmd = nil
	}
}

// fetch GETs url and returns the status, the body and the ETag.
func fetch(t *testing.T, url string) (int, []byte, string) {
	t.Helper()
	res, body := testutil.Fetch(t, http.DefaultClient, http.MethodGet, url)
	return res.StatusCode, body, res.Header.Get("ETag")
}

func metricSum(t *testing.T, series string, bases ...string) float64 {
	var n float64
	for _, b := range bases {
		n += metricOf(t, b, series)
	}
	return n
}

// TestCluster is the scale-out on real processes: a nats-server, two serve replicas and a
// worker. One computation per stylized URL across both replicas, the same bytes from both, the
// style library shared within a second, a worker killed mid-job replaced without losing or
// repeating work, and 503s (not hangs) while NATS is down.
func TestCluster(t *testing.T) {
	t.Setenv("STYLEPROXY_WEIGHTS", testutil.Weights(t))
	t.Setenv("STYLEPROXY_BACKEND", testutil.Backend())
	nats := startNATS(t)
	top := t
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	os.MkdirAll(images, 0o755)
	os.WriteFile(filepath.Join(images, "tubingen.jpg"), testutil.ReadShared(t, "images", "tubingen.jpg"), 0o644)
	if code, _, stderr := runCLI(t, "styles", "add", "starry", testutil.Shared(t, "images", "starry_night.jpg"), "--nats", nats.url(), "--style-size", "48"); code != 0 {
		t.Fatalf("styles add --nats: %s", stderr)
	}
	common := []string{"--nats", nats.url(), "--max-work-px", "64", "--nats-ack-wait", "2s"}
	var logs []*os.File
	worker, workerCmd, _ := commandProcess(t, "worker", common...)
	replica := func(name string) string {
		base, _, log := serveProcess(t, append([]string{"--data", filepath.Join(dir, name), "--source", images, "--cache-disk-mb", "0",
			"--admin-token", "cluster-test-token", "--timeout", "20s"}, common...)...)
		logs = append(logs, log)
		return base
	}
	a, b := replica("a"), replica("b")

	t.Run("one computation per URL", func(t *testing.T) {
		type answer struct {
			body []byte
			etag string
		}
		answers := make([][]answer, 10)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for n := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				base := []string{a, b}[n%2]
				url := fmt.Sprintf("%s/img/tubingen.jpg?style=starry&iters=%d&w=64", base, 2+n%10)
				status, body, etag := fetch(t, url)
				if status != http.StatusOK {
					t.Errorf("%s: %d %s", url, status, body)
					return
				}
				mu.Lock()
				answers[n%10] = append(answers[n%10], answer{body, etag})
				mu.Unlock()
			}()
		}
		wg.Wait()
		if n := metricOf(t, worker, "styleproxy_optimisations_total"); n != 10 {
			t.Errorf("the worker ran %v optimisations for 10 URLs, want 10", n)
		}
		if n := metricSum(t, "styleproxy_optimisations_total", a, b); n != 0 {
			t.Errorf("the replicas ran %v optimisations themselves, want 0", n)
		}
		if n := metricSum(t, "styleproxy_cluster_jobs_published_total", a, b); n != 10 {
			t.Errorf("the replicas published %v jobs, want 10", n)
		}
		for i, as := range answers {
			for _, x := range as[1:] {
				if !bytes.Equal(x.body, as[0].body) || x.etag != as[0].etag || x.etag == "" {
					t.Errorf("URL %d: the replicas' answers differ", i)
					break
				}
			}
		}
	})

	t.Run("style registered through A is served by B", func(t *testing.T) {
		var form bytes.Buffer
		w := multipart.NewWriter(&form)
		w.WriteField("name", "wave")
		w.WriteField("style_size", "48")
		fw, _ := w.CreateFormFile("image", "wave.jpg")
		fw.Write(testutil.ReadShared(t, "images", "starry_night.jpg"))
		w.Close()
		req, _ := http.NewRequest(http.MethodPost, a+"/admin/styles", &form)
		req.Header.Set("Content-Type", w.FormDataContentType())
		req.Header.Set("Authorization", "Bearer cluster-test-token")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("register through A: %d", res.StatusCode)
		}
		registered := time.Now()
		for {
			if status, _, _ := fetch(t, b+"/styles/wave"); status == http.StatusOK {
				break
			}
			if time.Since(registered) > time.Second {
				t.Fatal("B does not serve the style registered through A within 1 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("a worker killed mid-job", func(t *testing.T) {
		res := make(chan int, 1)
		go func() {
			status, _, _ := fetch(t, a+"/img/tubingen.jpg?style=starry&iters=150&w=64")
			res <- status
		}()
		for deadline := time.Now().Add(30 * time.Second); metricOf(t, a, "styleproxy_cluster_jobs_running") != 1; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the worker did not take the job")
			}
		}
		workerCmd.Process.Kill() // SIGKILL: no ack, no nak
		workerCmd.Wait()
		second, _, log := commandProcess(top, "worker", common...) // outlives this subtest
		logs = append(logs, log)
		select {
		case status := <-res:
			if status != http.StatusOK {
				t.Fatalf("the request whose worker was killed: %d", status)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("the request whose worker was killed did not complete")
		}
		// Every URL of the first subtest again, on both replicas: nothing is computed twice.
		for n := range 20 {
			base := []string{a, b}[n%2]
			if status, _, _ := fetch(t, fmt.Sprintf("%s/img/tubingen.jpg?style=starry&iters=%d&w=64", base, 2+n%10)); status != http.StatusOK {
				t.Fatalf("again: %d", status)
			}
		}
		if n := metricOf(t, second, "styleproxy_optimisations_total"); n != 1 {
			t.Errorf("the second worker ran %v optimisations, want 1 (the killed worker's job)", n)
		}
		if n := metricOf(t, second, `styleproxy_cluster_jobs_total{outcome="redelivered"}`); n != 1 {
			t.Errorf("redelivered jobs: %v, want 1", n)
		}
	})

	t.Run("NATS down", func(t *testing.T) {
		nats.stop()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if status, _, _ := fetch(t, a+"/readyz"); status == http.StatusServiceUnavailable {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("/readyz does not fail while NATS is down")
			}
		}
		const fresh = "/img/tubingen.jpg?style=starry&iters=13&w=64" // a stage no replica has
		start := time.Now()
		if status, _, _ := fetch(t, b+fresh); status != http.StatusServiceUnavailable || time.Since(start) > 3*time.Second {
			t.Errorf("a new image while NATS is down: %d after %s; want 503 at once", status, time.Since(start))
		}
		if status, _, _ := fetch(t, a+"/img/tubingen.jpg?style=starry&iters=2&w=64"); status != http.StatusOK {
			t.Errorf("an image in A's memory while NATS is down: %d, want 200", status)
		}
		nats.start()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if status, _, _ := fetch(t, a+"/readyz"); status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("/readyz does not recover once NATS is back")
			}
		}
		if status, _, _ := fetch(t, b+fresh); status != http.StatusOK {
			t.Errorf("after NATS came back: %d", status)
			for _, f := range logs {
				out, _ := os.ReadFile(f.Name())
				t.Logf("%s:\n%s", f.Name(), out)
			}
		}
	})
}
