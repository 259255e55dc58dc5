package fault

import (
	"net/http"
	"time"
)

type handler struct {
	in       *Injector
	endpoint string
	protocol Protocol
	next     http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seq, cfg := h.in.next(h.endpoint)
	rng := rngFor(h.in.seed, h.endpoint, seq)
	kind := decide(rng, cfg)

	if d := cfg.Latency.Duration; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return // the client is gone; nothing was injected
		}
	}
	if kind == "" || (kind == Truncate && r.Method != http.MethodGet) {
		h.next.ServeHTTP(w, r) // only a GET's answer has a body worth cutting
		return
	}
	h.in.record(Event{Endpoint: h.endpoint, Seq: seq, Kind: kind})
	requestID := requestID(rng)
	switch kind {
	case Error500, Error503:
		write(w, h.protocol, kind, requestID)
	case Throttle:
		writeThrottle(w, h.protocol, cfg.RetryAfter.Duration, requestID)
	case Reset:
		reset(w, r, h.protocol)
	case Truncate:
		h.next.ServeHTTP(&truncating{ResponseWriter: w}, r)
	case Stall:
		stall(r, cfg.StallFor.Duration, h.in.released)
	}
}
