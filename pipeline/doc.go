// Package pipeline serves images: it parses a request's query once into typed, validated,
// canonical options (which are also the cache key), checks the signature, finds the result in
// the cache or runs decode -> resize -> filters -> encode once per key, and answers with the
// right headers. Mount serves its routes (GET and HEAD /img/{path}) on an existing Echo server.
//
// Filters are plugins (package plugin): whoever mounts the pipeline lists them in
// Config.Filters; this package never imports a filter.
package pipeline
