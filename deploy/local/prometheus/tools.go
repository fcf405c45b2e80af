//go:build tools

// Package tools pins the Prometheus server that the no-Docker stack builds:
// `go build github.com/prometheus/prometheus/cmd/prometheus` in this module. Module v0.308.1 is the
// same code as the v3.8.1 image in docker-compose.yml (Prometheus 3.M.P is module v0.3MM.P), the newest
// release whose module builds with Go 1.24; the UI's assets are not in the module (an npm build).
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
