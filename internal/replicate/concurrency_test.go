package replicate_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecrpush/ecrpush/internal/replicate"
)

// hooked is the real ECR client with test hooks around two calls.
type hooked struct {
	*ecr.Client
	describes atomic.Int32
	afterDesc func(n int32) // after the n-th DescribeRegistry returned
	aroundPut func(put func() error) error
	puts      atomic.Int32
}

func (h *hooked) DescribeRegistry(ctx context.Context, in *ecr.DescribeRegistryInput, o ...func(*ecr.Options)) (*ecr.DescribeRegistryOutput, error) {
	out, err := h.Client.DescribeRegistry(ctx, in, o...)
	if n := h.describes.Add(1); h.afterDesc != nil {
		h.afterDesc(n)
	}
	return out, err
}

func (h *hooked) PutReplicationConfiguration(ctx context.Context, in *ecr.PutReplicationConfigurationInput, o ...func(*ecr.Options)) (*ecr.PutReplicationConfigurationOutput, error) {
	h.puts.Add(1)
	var out *ecr.PutReplicationConfigurationOutput
	put := func() (err error) {
		out, err = h.Client.PutReplicationConfiguration(ctx, in, o...)
		return err
	}
	if h.aroundPut == nil {
		return out, put()
	}
	return out, h.aroundPut(put)
}

// foreignRule is another writer's rule (say, Terraform's).
func foreignRule() types.ReplicationRule {
	return types.ReplicationRule{
		Destinations:      []types.ReplicationDestination{{Region: aws.String("eu-west-1"), RegistryId: aws.String(staging)}},
		RepositoryFilters: []types.RepositoryFilter{{Filter: aws.String("foreign/"), FilterType: types.RepositoryFilterTypePrefixMatch}},
	}
}

func read(t *testing.T, c *ecr.Client) *types.ReplicationConfiguration {
	t.Helper()
	out, err := c.DescribeRegistry(context.Background(), &ecr.DescribeRegistryInput{})
	if err != nil {
		t.Fatal(err)
	}
	return out.ReplicationConfiguration
}

func write(t *testing.T, c *ecr.Client, cfg *types.ReplicationConfiguration) {
	t.Helper()
	if _, err := c.PutReplicationConfiguration(context.Background(), &ecr.PutReplicationConfigurationInput{ReplicationConfiguration: cfg}); err != nil {
		t.Error(err)
	}
}

func hasForeign(cfg *types.ReplicationConfiguration) bool {
	for _, r := range cfg.Rules {
		if len(r.RepositoryFilters) == 1 && aws.ToString(r.RepositoryFilters[0].Filter) == "foreign/" {
			return true
		}
	}
	return false
}

func TestConfigureSurvivesConcurrentWriters(t *testing.T) {
	cases := []struct {
		name string
		hook func(t *testing.T, h *hooked, other *ecr.Client)
	}{
		{"writer between our read and our write", func(t *testing.T, h *hooked, other *ecr.Client) {
			h.afterDesc = func(n int32) {
				if n == 1 {
					cur := read(t, other)
					cur.Rules = append(cur.Rules, foreignRule())
					write(t, other, cur)
				}
			}
		}},
		{"writer who read before our write and wrote after it", func(t *testing.T, h *hooked, other *ecr.Client) {
			h.aroundPut = func(put func() error) error {
				if h.puts.Load() != 1 {
					return put()
				}
				stale := read(t, other)
				err := put()
				stale.Rules = append(stale.Rules, foreignRule())
				write(t, other, stale) // drops our rule: we must notice and merge again
				return err
			}
		}},
		{"writer after our read-back (caught by the settle re-read)", func(t *testing.T, h *hooked, other *ecr.Client) {
			var stale *types.ReplicationConfiguration
			h.aroundPut = func(put func() error) error {
				if h.puts.Load() == 1 {
					stale = read(t, other)
				}
				return put()
			}
			h.afterDesc = func(n int32) {
				if n == 3 { // first read-back after our write
					stale.Rules = append(stale.Rules, foreignRule())
					write(t, other, stale)
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start(t, fastConfig())
			s := federated(t)
			h := &hooked{Client: ciClient(s)}
			tc.hook(t, h, ciClient(s))
			res, err := replicate.Configure(context.Background(), h, repo, all4(t), testConfigure)
			if err != nil {
				t.Fatal(err)
			}
			final := read(t, ciClient(s))
			if !hasForeign(final) {
				t.Errorf("the other writer's rule is gone:\n%s", replicate.ConfigJSON(final))
			}
			for _, d := range all4(t) {
				if !replicate.Covered(final, repo, d) {
					t.Errorf("%s not covered:\n%s", d, replicate.ConfigJSON(final))
				}
			}
			if !replicate.SameConfig(final, res.After) {
				t.Errorf("Configure reported\n%s\nbut the registry has\n%s", replicate.ConfigJSON(res.After), replicate.ConfigJSON(final))
			}
		})
	}
}

func TestConfigureRacingConfigures(t *testing.T) {
	start(t, fastConfig())
	s := federated(t)
	// Both read (first read and pre-write re-read) before either writes: the worst interleaving.
	var barrier sync.WaitGroup
	barrier.Add(2)
	mk := func() *hooked {
		h := &hooked{Client: ciClient(s)}
		h.afterDesc = func(n int32) {
			if n == 2 {
				barrier.Done()
				barrier.Wait()
			}
		}
		return h
	}
	prefixes := []string{"team/app", "team/web"}
	dests := [][]replicate.Destination{all4(t)[:2], all4(t)[2:]}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			_, errs[i] = replicate.Configure(context.Background(), mk(), prefixes[i], dests[i], testConfigure)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	final := read(t, ciClient(s))
	for i, p := range prefixes {
		for _, d := range dests[i] {
			if !replicate.Covered(final, p, d) {
				t.Errorf("%s to %s lost:\n%s", p, d, replicate.ConfigJSON(final))
			}
		}
	}
}
