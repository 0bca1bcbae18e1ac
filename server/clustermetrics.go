package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/styleproxy/styleproxy/cluster"
)

// clusterMetrics are the work queue's metrics: jobs this process published or ran (counters),
// and the queue's state as JetStream reports it at each scrape.
type clusterMetrics struct {
	published prometheus.Counter
	jobs      *prometheus.CounterVec
	jobTime   prometheus.Histogram
	queue     *cluster.Queue // nil on a process that does not publish
	depth     *prometheus.Desc
	running   *prometheus.Desc
	workers   *prometheus.Desc
}

func newClusterMetrics(reg *prometheus.Registry, q *cluster.Queue) *clusterMetrics {
	m := &clusterMetrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "styleproxy_cluster_jobs_published_total", Help: "Jobs this replica published to the work queue (one per key missing across the cluster).",
		}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "styleproxy_cluster_jobs_total", Help: "Jobs this worker took, by outcome: completed, failed, done (its result was stored already), redelivered (taken again after a worker left it).",
		}, []string{"outcome"}),
		jobTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "styleproxy_cluster_job_seconds", Help: "Time this worker spent on a job, input fetch and result store included.",
			Buckets: []float64{.05, .1, .5, 1, 5, 15, 30, 60, 120, 300},
		}),
		queue:   q,
		depth:   prometheus.NewDesc("styleproxy_cluster_queue_depth", "Jobs in the work queue that no worker has taken.", nil, nil),
		running: prometheus.NewDesc("styleproxy_cluster_jobs_running", "Jobs taken by a worker and not yet acknowledged.", nil, nil),
		workers: prometheus.NewDesc("styleproxy_cluster_workers", "Workers announcing themselves in the cluster.", nil, nil),
	}
	for _, o := range []string{cluster.JobCompleted, cluster.JobFailed, cluster.JobDone, cluster.JobRedelivered} {
		m.jobs.WithLabelValues(o)
	}
	reg.MustRegister(m.published, m.jobs, m.jobTime, m)
	return m
}

// Describe implements prometheus.Collector for the queue's state.
func (m *clusterMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.depth
	ch <- m.running
	ch <- m.workers
}

// Collect implements prometheus.Collector: one look at JetStream per scrape; nothing while it is
// unreachable.
func (m *clusterMetrics) Collect(ch chan<- prometheus.Metric) {
	if m.queue == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := m.queue.Stats(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(m.depth, prometheus.GaugeValue, float64(st.Waiting))
	ch <- prometheus.MustNewConstMetric(m.running, prometheus.GaugeValue, float64(st.Running))
	ch <- prometheus.MustNewConstMetric(m.workers, prometheus.GaugeValue, float64(st.Workers))
}

func (m *clusterMetrics) onJob(outcome string, d time.Duration) {
	m.jobs.WithLabelValues(outcome).Inc()
	if outcome == cluster.JobCompleted || outcome == cluster.JobFailed {
		m.jobTime.Observe(d.Seconds())
	}
}
