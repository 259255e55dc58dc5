package federate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"
	"github.com/sethvargo/go-githubactions"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// TokenSource fetches a fresh OIDC ID token on every call.
type TokenSource interface {
	Token(ctx context.Context, audience string) (string, error)
	// Name is the identity kind: "github", "gcp" or "file".
	Name() string
}

// GitHub returns the token source of a GitHub Actions job (ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN).
func GitHub(getenv func(string) string, client *http.Client) TokenSource {
	client = orDefault(client)
	return &githubSource{getenv: getenv, action: githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithHTTPClient(client))}
}

type githubSource struct {
	getenv func(string) string
	action *githubactions.Action
	mask   func(string) // the job's request token is a secret too
}

func (*githubSource) Name() string { return "github" }

func (g *githubSource) Token(ctx context.Context, audience string) (string, error) {
	if g.getenv("ACTIONS_ID_TOKEN_REQUEST_URL") == "" || g.getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN") == "" {
		return "", fixable.New("no GitHub OIDC token: add `permissions: id-token: write` to the job " +
			"(ACTIONS_ID_TOKEN_REQUEST_URL is unset; pull requests from forks never get a token)")
	}
	if g.mask != nil {
		g.mask(g.getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN"))
	}
	// go-githubactions does not retry; network errors, 429, 5xx and the token service's "job in 'Pending'
	// state" 403 (it answers so until the runner has marked the job in progress) are transient.
	var tok string
	err := retryTransient(ctx, 6, 30*time.Second, func(ctx context.Context) error {
		t, err := g.action.GetIDToken(ctx, audience)
		if err == nil {
			tok = t
			return nil
		}
		var rf *githubactions.RequestFailedError
		if errors.As(err, &rf) {
			msg := githubMessage(rf.Body)
			switch {
			case rf.StatusCode >= 500 || rf.StatusCode == http.StatusTooManyRequests:
				return transient(fmt.Errorf("GitHub token service answered HTTP %d", rf.StatusCode))
			case rf.StatusCode == http.StatusForbidden && jobNotStarted(msg):
				return transient(fmt.Errorf("GitHub token service answered HTTP 403: %s", msg))
			case rf.StatusCode == http.StatusForbidden && strings.Contains(msg, "Can't issue ID_TOKEN for job in"):
				return fixable.New("the GitHub token service will not issue an ID token now (HTTP 403: %s): request it while the job runs", msg)
			}
			if msg != "" {
				msg = ": " + msg
			}
			return fixable.New("the GitHub token service refused the request (HTTP %d%s): the job needs `permissions: id-token: write`", rf.StatusCode, msg)
		}
		if isNetwork(err) {
			return transient(fmt.Errorf("GitHub token service: %w", err))
		}
		return fmt.Errorf("GitHub token service: %w", err)
	})
	if err != nil {
		return "", err
	}
	if tok == "" {
		return "", errors.New("the GitHub token service answered without a token")
	}
	return tok, nil
}

// jobNotStarted matches the token service's answer while the job is not yet in progress ("Can't issue
// ID_TOKEN for job in 'Pending' state.", also seen with 'Delayed'): retrying a moment later succeeds.
func jobNotStarted(msg string) bool {
	return strings.Contains(msg, "Can't issue ID_TOKEN for job in 'Pending' state") ||
		strings.Contains(msg, "Can't issue ID_TOKEN for job in 'Delayed' state")
}

// githubMessage is the message of a token service error body ({"message": ...}), or the body itself,
// shortened to one line.
func githubMessage(body string) string {
	var m struct {
		Message string `json:"message"`
	}
	msg := body
	if json.Unmarshal([]byte(body), &m) == nil && m.Message != "" {
		msg = m.Message
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return shown(msg)
}

// MetadataTimeout bounds every call to the GCE metadata server, so an unreachable one never hangs a build.
const MetadataTimeout = 5 * time.Second

// GCPMetadata returns the token source of the GCE metadata server (Cloud Build, GCE, GKE), honouring
// GCE_METADATA_HOST.
func GCPMetadata(client *http.Client) TokenSource {
	client = orDefault(client)
	return &gcpSource{md: metadata.NewClient(client)}
}

type gcpSource struct{ md *metadata.Client }

func (*gcpSource) Name() string { return "gcp" }

func (g *gcpSource) Token(ctx context.Context, audience string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, MetadataTimeout)
	defer cancel()
	tok, err := g.md.GetWithContext(ctx, "instance/service-accounts/default/identity?audience="+url.QueryEscape(audience)+"&format=full")
	if err != nil {
		return "", metadataError(ctx, err, "an identity token")
	}
	return strings.TrimSpace(tok), nil
}

func metadataError(ctx context.Context, err error, what string) error {
	var nd metadata.NotDefinedError
	if errors.As(err, &nd) {
		return fixable.Wrap(err, "the metadata server has no identity token for this build's service account: Cloud Build "+
			"only issues ID tokens to a user-specified build service account (set serviceAccount: in the build) that holds "+
			"roles/iam.serviceAccountOpenIdTokenCreator on itself; or pass --gcp-service-account EMAIL to mint one through IAM Credentials")
	}
	host := os.Getenv("GCE_METADATA_HOST")
	if host == "" {
		host = "169.254.169.254"
	}
	if ctx.Err() != nil || isNetwork(err) {
		return fixable.Wrap(err, fmt.Sprintf("the GCE metadata server at %s did not answer within %s for %s: run on Cloud Build or GCE, "+
			"or choose another --identity (github, file, aws)", host, MetadataTimeout, what))
	}
	return fmt.Errorf("GCE metadata server at %s: %w", host, err)
}

// DefaultIAMCredentialsEndpoint is Google's IAM Credentials API.
const DefaultIAMCredentialsEndpoint = "https://iamcredentials.googleapis.com"

// GCPImpersonate returns a token source that mints ID tokens for serviceAccount through IAM Credentials
// generateIdToken, authenticated with the metadata server's access token.
func GCPImpersonate(serviceAccount, endpoint string, client *http.Client) TokenSource {
	if endpoint == "" {
		endpoint = DefaultIAMCredentialsEndpoint
	}
	client = orDefault(client)
	return &impersonateSource{sa: serviceAccount, endpoint: strings.TrimRight(endpoint, "/"), md: metadata.NewClient(client), hc: client}
}

type impersonateSource struct {
	sa, endpoint string
	md           *metadata.Client
	hc           *http.Client
	mask         func(string) // the metadata server's access token is a secret too
}

func (*impersonateSource) Name() string { return "gcp" }

func (s *impersonateSource) Token(ctx context.Context, audience string) (string, error) {
	mctx, cancel := context.WithTimeout(ctx, MetadataTimeout)
	raw, err := s.md.GetWithContext(mctx, "instance/service-accounts/default/token")
	if err != nil {
		err = metadataError(mctx, err, "an access token")
		cancel()
		return "", err
	}
	cancel()
	var at struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(raw), &at); err != nil || at.AccessToken == "" {
		return "", errors.New("the metadata server's access token response is not JSON with access_token")
	}
	if s.mask != nil {
		s.mask(at.AccessToken)
	}
	body, _ := json.Marshal(map[string]any{"audience": audience, "includeEmail": true})
	u := s.endpoint + "/v1/projects/-/serviceAccounts/" + url.PathEscape(s.sa) + ":generateIdToken"
	var tok string
	err = retryTransient(ctx, 4, 20*time.Second, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+at.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.hc.Do(req)
		if err != nil {
			if isNetwork(err) {
				return transient(fmt.Errorf("IAM Credentials generateIdToken: %w", err))
			}
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		switch {
		case resp.StatusCode == http.StatusOK:
			var out struct {
				Token string `json:"token"`
			}
			if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
				return errors.New("IAM Credentials generateIdToken answered without a token")
			}
			tok = out.Token
			return nil
		case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
			return fixable.New("IAM Credentials refused to mint an ID token for %s (HTTP %d): grant the build's service account "+
				"roles/iam.serviceAccountOpenIdTokenCreator on %s, and check the email", s.sa, resp.StatusCode, s.sa)
		case resp.StatusCode == http.StatusUnauthorized:
			return fixable.New("IAM Credentials rejected the metadata server's access token (HTTP 401): the build's service account needs the cloud-platform scope")
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			return transient(fmt.Errorf("IAM Credentials generateIdToken answered HTTP %d", resp.StatusCode))
		default:
			return fmt.Errorf("IAM Credentials generateIdToken answered HTTP %d", resp.StatusCode)
		}
	})
	return tok, err
}

// File returns a token source that re-reads a web-identity token file (EKS IRSA, Kubernetes projected
// service account tokens) on every call, since the kubelet rotates it.
func File(path string) TokenSource { return fileSource(path) }

type fileSource string

func (fileSource) Name() string { return "file" }

func (f fileSource) Token(context.Context, string) (string, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return "", fixable.Wrap(err, fmt.Sprintf("cannot read the web identity token file %s: %v (set --web-identity-token-file or AWS_WEB_IDENTITY_TOKEN_FILE to a readable file)", f, errors.Unwrap(err)))
	}
	tok := strings.TrimSpace(string(b))
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n\t") {
		return "", fixable.New("the web identity token file %s does not hold a JWT (three dot-separated parts): point --web-identity-token-file at the projected service account token", f)
	}
	return tok, nil
}

func isNetwork(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "connection refused")
}

func orDefault(c *http.Client) *http.Client {
	if c == nil {
		return &http.Client{Timeout: 30 * time.Second}
	}
	return c
}
