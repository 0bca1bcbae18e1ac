// Package cluster scales styleproxy out on NATS JetStream: the style library in a KV bucket and
// an object store (StyleStore, a styles.Store), results in an object store shared by every
// replica (Results, a tier behind each replica's memory cache), and heavy work through a
// work-queue stream that workers pull (Queue on the replicas' side, Worker on the workers'),
// with one computation per key across the cluster.
//
// It is the only package that speaks NATS; server and cmd/styleproxy wire it in when
// `--nats URL` is given, and everything else stays unaware of it.
package cluster
