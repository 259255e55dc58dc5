package sts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/ecrpush/ecrpush/sandbox/oidc"
	"github.com/ecrpush/ecrpush/sandbox/world"
)

// apiVersion is the only STS API version there is.
const apiVersion = "2011-06-15"

// maxBody bounds a request body: the largest legal request (a 20 000 character token plus
// session policies and tags) is far below it.
const maxBody = 1 << 20

// Provider is an identity provider STS accepts web identity tokens from. Non-built-in
// providers stand for an IAM OIDC provider registered in every account of the world.
type Provider struct {
	Name      string   // provider name used in condition keys: "token.actions.githubusercontent.com", "accounts.google.com"
	IssuerURL string   // the sandbox issuer's URL (the token's iss)
	ClientIDs []string // audiences registered on the IAM OIDC provider ("sts.amazonaws.com"); empty for built-in providers
	BuiltIn   bool     // accounts.google.com: principal is "accounts.google.com", keys :aud=azp, :oaud=aud, :sub=sub
}

// Server is the STS endpoint. It is safe for concurrent use.
type Server struct {
	world    *world.World
	verifier *oidc.Verifier
	now      func() time.Time
	log      *slog.Logger

	mu        sync.Mutex
	providers []Provider
	faults    faults
}

// faults are AWS's intermittent answers the sandbox can inject into AssumeRoleWithWebIdentity.
type faults struct {
	keyRate float64 // InvalidIdentityToken "Couldn't retrieve verification key from your identity provider"
	rng     *mrand.Rand
	keyHits int
}

// AddProvider registers another identity provider (an IAM OIDC provider in every account), e.g. a
// GitHub Enterprise Server or enterprise issuer next to github.com's.
func (s *Server) AddProvider(p Provider) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.providers = append(s.providers, p)
}

// SetVerificationKeyFailureRate makes a fraction of AssumeRoleWithWebIdentity calls fail as AWS's do
// when STS cannot fetch the provider's keys at that moment: 400 InvalidIdentityToken "Couldn't retrieve
// verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation
// for requirements" (a known intermittent answer for GitHub's issuer; the API reference says to get a
// new token and retry). Draws come from seed so a run replays; rate ≤ 0 turns it off.
func (s *Server) SetVerificationKeyFailureRate(rate float64, seed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faults{keyRate: rate, rng: mrand.New(mrand.NewPCG(uint64(seed), 0x2545f4914f6cdd1d))}
}

// VerificationKeyFailures is how many calls were failed by SetVerificationKeyFailureRate.
func (s *Server) VerificationKeyFailures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.keyHits
}

func (s *Server) drawKeyFailure() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.keyRate <= 0 || s.faults.rng.Float64() >= s.faults.keyRate {
		return false
	}
	s.faults.keyHits++
	return true
}

// Option configures a Server.
type Option func(*Server)

// WithNow sets the clock STS checks token and credential expiry against (default: the world's).
func WithNow(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithLogger sets where requests are logged (default: nowhere). Tokens and keys are never logged.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// New returns an STS server over w that verifies web identity tokens with v and accepts
// them from providers.
func New(w *world.World, v *oidc.Verifier, providers []Provider, opts ...Option) *Server {
	s := &Server{world: w, verifier: v, providers: append([]Provider(nil), providers...), now: w.Now,
		log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// request is one parsed STS call.
type request struct {
	http   *http.Request
	body   []byte     // the raw body, for signature verification
	params url.Values // query string and form body merged, body winning
	id     string     // the request id echoed in the response and x-amzn-RequestId
}

func (r *request) param(name string) (string, bool) {
	v, ok := r.params[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// handlerFunc answers one action: an XML document to send with 200, or an error.
type handlerFunc func(ctx context.Context, r *request) (any, *apiError)

// Handler serves the Query protocol: POST / with a form body, or GET with a query string.
func (s *Server) Handler() http.Handler {
	actions := map[string]handlerFunc{
		"AssumeRoleWithWebIdentity": s.assumeRoleWithWebIdentity,
		"AssumeRole":                s.assumeRole,
		"GetCallerIdentity":         s.getCallerIdentity,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		start := time.Now()
		r, aerr := s.parse(w, hr)
		if aerr == nil {
			action, _ := r.param("Action")
			version, _ := r.param("Version")
			h, ok := actions[action]
			var out any
			switch {
			case !ok || version != apiVersion:
				aerr = errInvalidAction(action, version)
			default:
				out, aerr = h(hr.Context(), r)
			}
			if aerr == nil {
				writeXML(w, http.StatusOK, r.id, out)
				s.log.Info("sts request", "action", action, "status", http.StatusOK, "request_id", r.id,
					"elapsed", time.Since(start))
				return
			}
			s.log.Info("sts request", "action", action, "status", aerr.Status, "code", aerr.Code,
				"message", aerr.Message, "request_id", r.id, "elapsed", time.Since(start))
			writeError(w, r.id, aerr)
			return
		}
		id := requestID()
		s.log.Info("sts request", "status", aerr.Status, "code", aerr.Code, "message", aerr.Message, "request_id", id)
		writeError(w, id, aerr)
	})
}

// parse reads the body once (signatures cover it) and merges query and form parameters.
func (s *Server) parse(w http.ResponseWriter, hr *http.Request) (*request, *apiError) {
	r := &request{http: hr, id: requestID()}
	switch hr.Method {
	case http.MethodGet, http.MethodPost:
	default:
		return nil, newError(http.StatusMethodNotAllowed, "InvalidAction", "Unsupported HTTP method %s", hr.Method)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, hr.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, newError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "Request body exceeds %d bytes", maxBody)
		}
		return nil, newError(http.StatusBadRequest, "MalformedQueryString", "Could not read the request body: %v", err)
	}
	r.body = body
	query, err := url.ParseQuery(hr.URL.RawQuery)
	if err != nil {
		return nil, newError(http.StatusBadRequest, "MalformedQueryString", "The query string is malformed")
	}
	r.params = query
	if len(body) > 0 {
		if ct := hr.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-www-form-urlencoded" {
				return nil, newError(http.StatusBadRequest, "InvalidAction", "Unsupported Content-Type %q", ct)
			}
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, newError(http.StatusBadRequest, "MalformedQueryString", "The request body is malformed")
		}
		for k, v := range form {
			r.params[k] = v
		}
	}
	return r, nil
}

// requestID returns a random UUID v4, the shape of AWS request ids.
func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
