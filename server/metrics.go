package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/styleproxy/styleproxy/pipeline"
)

// metrics are the server's Prometheus metrics (all named styleproxy_*), in a registry of the
// server's own so that several servers in one process (tests) do not collide.
type metrics struct {
	registry       *prometheus.Registry
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	cache          *prometheus.CounterVec
	queueDepth     prometheus.Gauge
	running        prometheus.Gauge
	work           *prometheus.HistogramVec
	workErrors     *prometheus.CounterVec
	iterations     prometheus.Counter
	optimisations  prometheus.Counter
	iterationsRate prometheus.Gauge
	routes         map[string]bool // route patterns with a label of their own (setRoutes)
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "styleproxy_http_requests_total", Help: "HTTP requests answered, by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "styleproxy_http_request_duration_seconds", Help: "Time to answer HTTP requests, by route.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 15, 30, 60, 120, 300},
		}, []string{"route"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "styleproxy_cache_lookups_total", Help: "Response cache lookups, by tier (memory, disk) and result (hit, miss).",
		}, []string{"tier", "result"}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "styleproxy_queue_depth", Help: "Stylizations waiting for a worker.",
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "styleproxy_stylizations_running", Help: "Stylizations holding a worker now.",
		}),
		work: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "styleproxy_work_seconds", Help: "Time to compute a response on a cache miss, by kind (stylization or plain).",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 15, 30, 60, 120, 300},
		}, []string{"kind"}),
		workErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "styleproxy_work_errors_total", Help: "Computations that failed, by kind.",
		}, []string{"kind"}),
		iterations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "styleproxy_iterations_total", Help: "Optimisation iterations run (rate() gives iterations per second).",
		}),
		optimisations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "styleproxy_optimisations_total", Help: "Style optimisations run (each serves every format, quality, strength and colour option of one picture and style).",
		}),
		iterationsRate: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "styleproxy_iterations_per_second", Help: "Iterations per second of the last finished stylization.",
		}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.cache, m.queueDepth, m.running, m.work, m.workErrors,
		m.iterations, m.optimisations, m.iterationsRate, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// knownMethods are the methods that get a label value of their own; any other is "other".
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodDelete: true, http.MethodPatch: true, http.MethodOptions: true,
}

// setRoutes names the route patterns that get a label value of their own; any other is "other".
func (m *metrics) setRoutes(routes []*echo.Route) {
	m.routes = map[string]bool{}
	for _, r := range routes {
		m.routes[r.Path] = true
	}
}

// middleware counts and times every request by its route pattern (not its path, which would
// make a series per image); labels take bounded values, whatever a client sends.
func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if !m.routes[route] {
			route = "other"
		}
		method := c.Request().Method
		if !knownMethods[method] {
			method = "other"
		}
		m.requests.WithLabelValues(route, method, strconv.Itoa(c.Response().Status)).Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		return nil
	}
}

func workKind(heavy bool) string {
	if heavy {
		return "stylization"
	}
	return "plain"
}

// hooks feed the pipeline's events into the metrics.
func (m *metrics) hooks() pipeline.Hooks {
	return pipeline.Hooks{
		OnCache: func(tier string, hit bool) {
			result := "miss"
			if hit {
				result = "hit"
			}
			m.cache.WithLabelValues(tier, result).Inc()
		},
		OnQueue: func(queued, running int) {
			m.queueDepth.Set(float64(queued))
			m.running.Set(float64(running))
		},
		OnWorkEnd: func(heavy bool, d time.Duration, err error) {
			m.work.WithLabelValues(workKind(heavy)).Observe(d.Seconds())
			if err != nil {
				m.workErrors.WithLabelValues(workKind(heavy)).Inc()
			}
		},
	}
}

// onIterations records a finished stylization's iterations.
func (m *metrics) onIterations(n int, d time.Duration) {
	m.iterations.Add(float64(n))
	m.optimisations.Inc()
	if d > 0 {
		m.iterationsRate.Set(float64(n) / d.Seconds())
	}
}

func (m *metrics) handler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
}
