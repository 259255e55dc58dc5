package fault

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
)

// rngFor returns the PRNG for one request. Seeding ChaCha8 with a hash of (seed,
// endpoint, seq) makes every request's draws independent of the others and of request
// interleaving across endpoints, so a replay only needs the same order per endpoint.
func rngFor(seed int64, endpoint string, seq int64) *rand.Rand {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], uint64(seq))
	h.Write(b[:])
	h.Write([]byte(endpoint))
	var key [32]byte
	copy(key[:], h.Sum(nil))
	return rand.New(rand.NewChaCha8(key))
}

// decide draws at most one fault for a request: the rates partition [0,1) in the order
// error, throttle, reset, truncate, stall (a sum above 1 leaves the later kinds what remains;
// kinds added later come last, so a profile without them replays as before).
func decide(rng *rand.Rand, cfg Config) Kind {
	u := rng.Float64()
	e, t, r := clamp(cfg.ErrorRate), clamp(cfg.ThrottleRate), clamp(cfg.ResetRate)
	tr, st := clamp(cfg.TruncateRate), clamp(cfg.StallRate)
	switch {
	case u < e:
		if rng.IntN(2) == 0 {
			return Error500
		}
		return Error503
	case u < e+t:
		return Throttle
	case u < e+t+r:
		return Reset
	case u < e+t+r+tr:
		return Truncate
	case u < e+t+r+tr+st:
		return Stall
	}
	return ""
}

func clamp(p float64) float64 {
	switch {
	case p > 1:
		return 1
	case p > 0:
		return p
	}
	return 0 // also NaN
}
