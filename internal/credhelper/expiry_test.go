package credhelper

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ecrpush/ecrpush/internal/ecr"
)

func TestCapToCredentials(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	token := now.Add(12 * time.Hour)
	creds := func(c aws.Credentials, err error) aws.CredentialsProvider {
		return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, err })
	}
	for _, tc := range []struct {
		name string
		p    aws.CredentialsProvider
		want time.Time
	}{
		{"1h session", creds(aws.Credentials{CanExpire: true, Expires: now.Add(time.Hour)}, nil), now.Add(time.Hour)},
		{"12h session, later than the token", creds(aws.Credentials{CanExpire: true, Expires: now.Add(13 * time.Hour)}, nil), token},
		{"keys that do not expire", creds(aws.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE"}, nil), token},
		{"unreadable", creds(aws.Credentials{}, errors.New("no")), token},
		{"none", nil, token},
	} {
		if got := CapToCredentials(context.Background(), tc.p, token); !got.Equal(tc.want) {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestHelperFetchTimeout(t *testing.T) {
	f := &fetcher{ttl: time.Hour}
	h, now := newHelper(t, f)
	host := "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	stalled := func(ctx context.Context, r ecr.Registry) (*ecr.Token, error) { <-ctx.Done(); return nil, ctx.Err() }

	// No cached token: the get fails once FetchTimeout has passed, saying so.
	h.Fetch, h.FetchTimeout = stalled, 50*time.Millisecond
	start := time.Now()
	_, _, err := h.Get(host)
	if err == nil || !strings.Contains(err.Error(), "within 50ms (STS or ECR did not answer) and no unexpired cached token") {
		t.Errorf("stalled fetch: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Errorf("the fetch was not bounded: %v after %s", err, time.Since(start))
	}

	// A stale but unexpired cached token is used instead.
	h.Fetch = f.fetch
	if _, _, err := h.Get(host); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(40 * time.Minute)
	h.Fetch = stalled
	if _, pw, err := h.Get(host); err != nil || pw != "pw1" {
		t.Errorf("stale token while STS stalls: %q %v", pw, err)
	}
	if DefaultFetchTimeout >= 5*time.Second {
		t.Errorf("DefaultFetchTimeout %s leaves no room under 5 s", DefaultFetchTimeout)
	}
}
