package federate

import (
	"context"
	"time"

	"github.com/sethvargo/go-retry"
)

// transient marks an error worth retrying; everything else fails at once.
func transient(err error) error { return retry.RetryableError(err) }

// retryTransient runs f up to attempts times within total, with jittered exponential backoff, retrying
// only errors marked transient.
func retryTransient(ctx context.Context, attempts uint64, total time.Duration, f func(context.Context) error) error {
	b := retry.NewExponential(250 * time.Millisecond)
	b = retry.WithJitterPercent(20, b)
	b = retry.WithCappedDuration(5*time.Second, b)
	b = retry.WithMaxRetries(attempts-1, b)
	b = retry.WithMaxDuration(total, b)
	return retry.Do(ctx, b, f)
}
