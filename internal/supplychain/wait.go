package supplychain

import (
	"context"
	"errors"
	"time"
)

// errTimeout ends a poll whose condition never held.
var errTimeout = errors.New("timed out")

// poll calls check until it reports done or fails, at most every interval and for at most timeout
// (and never more than maxPolls times): every wait in this package is bounded in time and requests.
func poll(ctx context.Context, timeout, interval time.Duration, check func() (bool, error)) error {
	const maxPolls = 10_000
	deadline := time.Now().Add(timeout)
	for n := 0; n < maxPolls; n++ {
		done, err := check()
		if err != nil || done {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errTimeout
		}
		t := time.NewTimer(min(interval, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return errTimeout
}

// orDefault returns d when v is not positive.
func orDefault(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}
