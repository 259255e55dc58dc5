package fault

import (
	"net/http"
	"sync"
)

// Protocol decides how a throttle is expressed.
type Protocol int

const (
	Registry Protocol = iota // 429 TOOMANYREQUESTS with Retry-After, OCI error body
	AWSJSON                  // 400 ThrottlingException (JSON 1.1), 5xx InternalServerError/ServiceUnavailable
	AWSQuery                 // 400 Throttling (XML ErrorResponse), 5xx
	Plain                    // token issuers: 429 / 5xx with a short text body
)

// Config is the fault profile of one endpoint.
type Config struct {
	ErrorRate    float64  `json:"errorRate"`    // probability of a 500 or 503
	ThrottleRate float64  `json:"throttleRate"` // probability of a throttle (429 + Retry-After, or ThrottlingException)
	ResetRate    float64  `json:"resetRate"`    // probability of a connection reset mid-body
	TruncateRate float64  `json:"truncateRate"` // probability of a GET answer cut short (clean close)
	StallRate    float64  `json:"stallRate"`    // probability of a request never answered
	Latency      Duration `json:"latency"`      // added to every request
	RetryAfter   Duration `json:"retryAfter"`   // Retry-After on 429 (default 1s; an hour tests a client's budget)
	// StallFor is how long a stalled request is held before its connection is dropped (default:
	// until the client gives up or Release, at most 10 minutes).
	StallFor Duration `json:"stallFor"`
}

// Kind is the kind of an injected fault.
type Kind string

const (
	Error500 Kind = "error500"
	Error503 Kind = "error503"
	Throttle Kind = "throttle"
	Reset    Kind = "reset"
	Truncate Kind = "truncate"
	Stall    Kind = "stall"
)

// Event is one injected fault: the Seq-th request (from 1) on Endpoint got Kind.
type Event struct {
	Endpoint string `json:"endpoint"`
	Seq      int64  `json:"seq"`
	Kind     Kind   `json:"kind"`
}

// Injector decides faults from a seeded source so a failing run can be replayed.
// It is safe for concurrent use; a nil *Injector injects nothing.
type Injector struct {
	seed int64

	mu        sync.Mutex
	endpoints map[string]*endpointState
	events    []Event

	released    chan struct{}
	releaseOnce sync.Once
}

type endpointState struct {
	cfg Config
	seq int64
}

// New returns an injector whose decisions derive from seed.
func New(seed int64) *Injector {
	return &Injector{seed: seed, endpoints: map[string]*endpointState{}, released: make(chan struct{})}
}

// Release lets go of every stalled request (and of those stalled later): call it before shutting
// the servers down, which would otherwise wait for them.
func (in *Injector) Release() {
	if in == nil {
		return
	}
	in.releaseOnce.Do(func() { close(in.released) })
}

// Seed is the seed the injector was created with (log it so a run can be replayed).
func (in *Injector) Seed() int64 { return in.seed }

// Wrap returns h with faults injected per cfg, named endpoint for the log.
func (in *Injector) Wrap(endpoint string, p Protocol, cfg Config, h http.Handler) http.Handler {
	if in == nil {
		return h
	}
	in.Set(endpoint, cfg)
	return &handler{in: in, endpoint: endpoint, protocol: p, next: h}
}

// Set replaces an endpoint's fault profile; requests already in flight keep the old one.
func (in *Injector) Set(endpoint string, cfg Config) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.state(endpoint).cfg = cfg
}

// Config returns an endpoint's current fault profile.
func (in *Injector) Config(endpoint string) (Config, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	st, ok := in.endpoints[endpoint]
	if !ok {
		return Config{}, false
	}
	return st.cfg, true
}

// Events returns the faults injected so far, in the order they were injected.
func (in *Injector) Events() []Event {
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Event(nil), in.events...)
}

func (in *Injector) state(endpoint string) *endpointState {
	st, ok := in.endpoints[endpoint]
	if !ok {
		st = &endpointState{}
		in.endpoints[endpoint] = st
	}
	return st
}

// next numbers a request on endpoint and returns the profile it runs under.
func (in *Injector) next(endpoint string) (int64, Config) {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := in.state(endpoint)
	st.seq++
	return st.seq, st.cfg
}

func (in *Injector) record(e Event) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.events = append(in.events, e)
}
