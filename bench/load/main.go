// Command load is a small HTTP load generator for styleproxy: C concurrent clients send GET
// requests for one URL (or several, round robin) for a fixed time, then it prints requests per
// second, latency percentiles and the status codes seen.
//
//	go run ./bench/load -c 16 -d 5s 'http://127.0.0.1:8080/img/kitten.jpg?w=300'
//
// It sends one warm-up request first (so a cached-hit benchmark measures hits, not the first
// computation) unless -warmup=false, and it only targets loopback addresses unless -remote:
// load tests belong on the machine they run on.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"time"
)

func main() {
	conc := flag.Int("c", 16, "concurrent clients")
	dur := flag.Duration("d", 5*time.Second, "how long to send requests")
	maxReq := flag.Int("n", 0, "stop after this many requests in all (0 = no limit)")
	warmup := flag.Bool("warmup", true, "send one request per URL before measuring")
	remote := flag.Bool("remote", false, "allow targets other than loopback addresses")
	accept := flag.String("accept", "", "Accept header to send")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: load [flags] URL...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *conc < 1 || *dur <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	urls := flag.Args()
	for _, u := range urls {
		if err := checkTarget(u, *remote); err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(2)
		}
	}
	res, err := run(urls, *conc, *dur, *maxReq, *warmup, *accept)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	res.print(os.Stdout, *conc)
}

// checkTarget refuses URLs whose host is not a loopback address (or localhost) unless remote.
func checkTarget(raw string, remote bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	if remote {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address (pass -remote to allow it)", host)
}

type result struct {
	elapsed   time.Duration
	latencies []time.Duration
	statuses  map[int]int
	errors    int
	firstErr  error
	bytes     int64
}

// client sends the run's requests.
type client struct {
	http   *http.Client
	accept string
}

// get fetches u and reads the whole body.
func (c client) get(ctx context.Context, u string) (int, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, err
	}
	if c.accept != "" {
		req.Header.Set("Accept", c.accept)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, n, err
}

// warm fetches each URL once, so that the run measures cache hits.
func (c client) warm(urls []string) error {
	for _, u := range urls {
		st, _, err := c.get(context.Background(), u)
		if err != nil {
			return fmt.Errorf("warm-up %s: %w", u, err)
		}
		if st != http.StatusOK {
			fmt.Fprintf(os.Stderr, "load: warning: warm-up of %s answered %d\n", u, st)
		}
	}
	return nil
}

// add folds one client's result into r.
func (r *result) add(o *result) {
	r.latencies = append(r.latencies, o.latencies...)
	for k, v := range o.statuses {
		r.statuses[k] += v
	}
	r.errors += o.errors
	r.bytes += o.bytes
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
}

func run(urls []string, conc int, dur time.Duration, maxReq int, warmup bool, accept string) (*result, error) {
	tr := &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, IdleConnTimeout: time.Minute}
	c := client{http: &http.Client{Transport: tr, Timeout: 2 * time.Minute}, accept: accept}
	defer tr.CloseIdleConnections()
	if warmup {
		if err := c.warm(urls); err != nil {
			return nil, err
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var (
		mu     sync.Mutex
		total  = &result{statuses: map[int]int{}}
		wg     sync.WaitGroup
		issued int64
	)
	take := func() (int64, bool) { // the next request's number, within -n
		mu.Lock()
		defer mu.Unlock()
		if maxReq > 0 && issued >= int64(maxReq) {
			return 0, false
		}
		issued++
		return issued, true
	}
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := &result{statuses: map[int]int{}}
			for ctx.Err() == nil {
				i, ok := take()
				if !ok {
					break
				}
				t0 := time.Now()
				st, n, err := c.get(ctx, urls[int(i)%len(urls)])
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
						break // cut off by the end of the run: not an error
					}
					local.errors++
					if local.firstErr == nil {
						local.firstErr = err
					}
					continue
				}
				local.latencies = append(local.latencies, d)
				local.statuses[st]++
				local.bytes += n
			}
			mu.Lock()
			total.add(local)
			mu.Unlock()
		}()
	}
	wg.Wait()
	total.elapsed = time.Since(start)
	return total, nil
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (r *result) print(w io.Writer, conc int) {
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	n := len(r.latencies)
	secs := r.elapsed.Seconds()
	fmt.Fprintf(w, "clients      %d\n", conc)
	fmt.Fprintf(w, "duration     %.2fs\n", secs)
	fmt.Fprintf(w, "requests     %d (%d transport errors)\n", n, r.errors)
	fmt.Fprintf(w, "requests/s   %.0f\n", float64(n)/secs)
	fmt.Fprintf(w, "throughput   %.1f MB/s\n", float64(r.bytes)/secs/1e6)
	if n > 0 {
		fmt.Fprintf(w, "latency      p50 %v  p90 %v  p99 %v  max %v\n",
			pct(r.latencies, 50).Round(time.Microsecond), pct(r.latencies, 90).Round(time.Microsecond),
			pct(r.latencies, 99).Round(time.Microsecond), r.latencies[n-1].Round(time.Microsecond))
	}
	codes := make([]int, 0, len(r.statuses))
	for c := range r.statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	fmt.Fprintf(w, "statuses    ")
	for _, c := range codes {
		fmt.Fprintf(w, " %d:%d", c, r.statuses[c])
	}
	fmt.Fprintln(w)
	if r.firstErr != nil {
		fmt.Fprintf(w, "first error  %v\n", r.firstErr)
	}
}
