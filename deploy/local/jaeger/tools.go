//go:build tools

// Package tools pins the Jaeger v2 all-in-one binary that the no-Docker stack builds:
// `go build github.com/jaegertracing/jaeger/cmd/jaeger` in this module. Module v1.76.0 is the
// same code as the v2.13.0 image in docker-compose.yml (the v2 tags lack a /v2 module path).
package tools

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
