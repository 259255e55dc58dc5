package fault

import "net/http"

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
	Latency      Duration `json:"latency"`      // added to every request
	RetryAfter   Duration `json:"retryAfter"`   // Retry-After on 429 (default 1s)
}

// Duration is a time.Duration that reads "150ms" from JSON/YAML.
type Duration struct { /* TODO */
}

// Injector decides faults from a seeded source so a failing run can be replayed.
type Injector struct { /* TODO */
}

// New returns an injector whose decisions derive from seed.
func New(seed int64) *Injector { panic("TODO") }

// Wrap returns h with faults injected per cfg, named endpoint for the log.
func (in *Injector) Wrap(endpoint string, p Protocol, cfg Config, h http.Handler) http.Handler {
	panic("TODO")
}
