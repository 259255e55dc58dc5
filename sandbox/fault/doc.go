// Package fault injects seeded, replayable faults into the sandbox's HTTP endpoints:
// added latency, 500/503 errors and throttles in each protocol's own error format
// (OCI registry JSON, AWS JSON, AWS query XML, plain text), connection resets (a GET in
// the middle of its response body, anything else before its status line), GET answers cut short
// by a clean close, and stalls (a request partly read and never answered — the silent registry of
// issue 14, where a PUT that is never answered hung clients with no deadline). A throttle's
// Retry-After is configurable, up to the hour that tests whether a client honours it within a
// budget or waits it out. Every decision derives from (seed, endpoint, request sequence
// number), so the same seed and request order replays the same faults. It never changes a
// request that it lets through and never decides anything from wall-clock time.
package fault
