package replicate_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/internal/sandboxtest"
	"github.com/ecrpush/ecrpush/sandbox"
)

const (
	ciRole  = "arn:aws:iam::111122223333:role/ecrpush-ci"
	ci      = sandbox.CIAccount
	prod    = sandbox.ProdAccount
	staging = sandbox.StagingAccount
	repo    = "team/app"
)

// fastConfig is the default sandbox with replication lag small enough for tests.
func fastConfig() *sandbox.Config {
	cfg := sandbox.DefaultConfig()
	cfg.ReplicationDelay = sandbox.Dur(100 * time.Millisecond)
	return cfg
}

// start runs a sandbox and points the process environment at it, as a CI job would be.
func start(t *testing.T, cfg *sandbox.Config) *sandbox.Sandbox {
	return sandboxtest.StartExported(t, cfg)
}

func federated(t *testing.T) *federate.Session {
	t.Helper()
	s, err := federate.Federate(context.Background(), federate.Options{RoleARN: ciRole})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// all4 are prod and staging in both regions, writable through ecrpush-deploy.
func all4(t *testing.T) []replicate.Destination {
	t.Helper()
	ds, err := replicate.ParseDestinations([]string{prod + ":us-east-1," + prod + ":eu-west-1", staging + ":us-east-1", staging + ":eu-west-1"}, ci, "us-east-1", "ecrpush-deploy")
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func randomArtifact(t *testing.T, size, layers int64) *push.Artifact {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	a, err := push.ImageArtifact("random", img)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// pushTo publishes a to repo in cfg's registry.
func pushTo(t *testing.T, cfg aws.Config, a *push.Artifact, tags ...string) *push.Result {
	t.Helper()
	p, err := push.NewECR(context.Background(), cfg, repo)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res, err := p.Publish(context.Background(), a, tags)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// headDigest reads repo:ref back from the registry of cfg's account and region, with cfg's credentials.
func headDigest(t *testing.T, cfg aws.Config, ref string) (v1.Hash, error) {
	t.Helper()
	out, err := ecr.NewFromConfig(cfg).GetAuthorizationToken(context.Background(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	ad := out.AuthorizationData[0]
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(ad.AuthorizationToken))
	user, pass, _ := strings.Cut(string(raw), ":")
	host := strings.TrimPrefix(aws.ToString(ad.ProxyEndpoint), "http://")
	sep := ":"
	if strings.HasPrefix(ref, "sha256:") {
		sep = "@"
	}
	r, err := name.ParseReference(host + "/" + repo + sep + ref)
	if err != nil {
		t.Fatal(err)
	}
	// No keep-alive: a connection the pool dialed but never used would hold the sandbox's Shutdown for
	// net/http's 5 s StateNew grace.
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	d, err := remote.Head(r, remote.WithAuth(&authn.Basic{Username: user, Password: pass}), remote.WithTransport(tr))
	if err != nil {
		return v1.Hash{}, err
	}
	return d.Digest, nil
}

// destConfig is the deploy role of d's account, federated the way users do, in d's region.
func destConfig(t *testing.T, s *federate.Session, d replicate.Destination) aws.Config {
	t.Helper()
	cfg, err := s.Role(context.Background(), "arn:aws:iam::"+d.Account+":role/ecrpush-deploy")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Region = d.Region
	return cfg
}

// rawRules returns the rules of DescribeRegistry exactly as the ECR API sent them.
func rawRules(t *testing.T, cfg aws.Config) []json.RawMessage {
	t.Helper()
	rec := &recorder{base: http.DefaultTransport}
	c := cfg.Copy()
	c.HTTPClient = &http.Client{Transport: rec}
	if _, err := ecr.NewFromConfig(c).DescribeRegistry(context.Background(), &ecr.DescribeRegistryInput{}); err != nil {
		t.Fatal(err)
	}
	var out struct {
		ReplicationConfiguration struct {
			Rules []json.RawMessage `json:"rules"`
		} `json:"replicationConfiguration"`
	}
	if err := json.Unmarshal(rec.last(), &out); err != nil {
		t.Fatalf("DescribeRegistry body: %v", err)
	}
	return out.ReplicationConfiguration.Rules
}

type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	body []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.body = b
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func (r *recorder) last() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.body
}

func ciClient(s *federate.Session) *ecr.Client { return ecr.NewFromConfig(s.Config) }

// fast are Wait options for a sandbox whose replication lag is 100 ms.
var fast = []replicate.WaitOption{replicate.WithPollInterval(200 * time.Millisecond), replicate.WithAppearGrace(time.Second)}

var testConfigure = replicate.ConfigureOptions{Apply: true, SourceAccount: ci, SourceRegion: "us-east-1", Settle: 100 * time.Millisecond}
