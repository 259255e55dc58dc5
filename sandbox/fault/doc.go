// Package fault injects seeded, replayable faults into the sandbox's HTTP endpoints:
// added latency, 500/503 errors and throttles in each protocol's own error format
// (OCI registry JSON, AWS JSON, AWS query XML, plain text) and connection resets (a GET in
// the middle of its response body, anything else before its status line). Every decision derives from (seed, endpoint, request sequence
// number), so the same seed and request order replays the same faults. It never changes a
// request that it lets through and never decides anything from wall-clock time.
package fault
