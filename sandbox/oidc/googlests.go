package oidc

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Token exchange vocabulary (RFC 8693 and Google's AWS subject token type).
const (
	TokenExchangeGrant      = "urn:ietf:params:oauth:grant-type:token-exchange"
	AccessTokenType         = "urn:ietf:params:oauth:token-type:access_token"
	AWSSubjectTokenType     = "urn:ietf:params:aws:token-type:aws4_request"
	googleSTSTokenPath      = "/v1/token"
	googleFederatedLifetime = time.Hour
	maxSTSBody              = 64 << 10
	// RegistryTokenPath is where the sandbox Artifact Registry hands out registry tokens, as
	// LOCATION-docker.pkg.dev/v2/token does.
	RegistryTokenPath = "/v2/token"
)

// awsSTSHostRe is what Google accepts as the target of the serialized GetCallerIdentity request: the
// global STS endpoint or a regional one, never anything else (it would otherwise call any URL it is given).
var awsSTSHostRe = regexp.MustCompile(`^sts(\.[a-z0-9-]+)?\.amazonaws\.com$`)

// WorkloadProvider is the resource name of a workload identity pool provider, the audience of a token
// exchange and the value of x-goog-cloud-target-resource.
func WorkloadProvider(projectNumber, pool, provider string) string {
	return "//iam.googleapis.com/projects/" + projectNumber + "/locations/global/workloadIdentityPools/" + pool + "/providers/" + provider
}

// AWSProvider is a workload identity pool provider of the AWS kind: it admits callers of one AWS
// account (optionally only some role names, as an attribute condition would).
type AWSProvider struct {
	Audience string   // WorkloadProvider(...)
	Account  string   // the AWS account id configured on the provider
	Roles    []string // role names admitted ("": every role of the account)
}

// FederatedToken is what an access token stands for.
type FederatedToken struct {
	Subject  string // google.subject: the caller ARN GetCallerIdentity returned
	Account  string
	Provider string
	Expires  time.Time
}

// GoogleSTS is sts.googleapis.com's token exchange for AWS-sourced workload identity federation: it
// takes the serialized, SigV4-signed GetCallerIdentity request Google's client libraries build, checks
// its shape and that it targets the audience's provider, sends it to AWS STS (the sandbox's) exactly
// as signed, and issues a federated access token for the caller AWS names. RegistryAuth puts a
// Google-token check in front of any registry handler, standing in for Artifact Registry.
type GoogleSTS struct {
	awsSTS string
	client *http.Client
	issued ledger

	mu           sync.Mutex
	providers    map[string]AWSProvider
	tokens       map[string]FederatedToken
	impersonable map[string]bool // service accounts federated identities may impersonate
	lifetime     time.Duration
	now          func() time.Time
}

// NewGoogleSTS returns a token exchange that verifies subject tokens against the AWS STS at awsSTSURL.
func NewGoogleSTS(awsSTSURL string) *GoogleSTS {
	return &GoogleSTS{
		awsSTS:    strings.TrimSuffix(awsSTSURL, "/"),
		client:    &http.Client{Timeout: 10 * time.Second},
		providers: map[string]AWSProvider{},
		tokens:    map[string]FederatedToken{},
		lifetime:  googleFederatedLifetime,
		now:       time.Now,
	}
}

// AddAWSProvider configures a provider.
func (g *GoogleSTS) AddAWSProvider(p AWSProvider) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.providers[normalizeAudience(p.Audience)] = p
}

// Audiences lists the configured providers' audiences.
func (g *GoogleSTS) Audiences() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, p := range g.providers {
		out = append(out, p.Audience)
	}
	return out
}

// SetLifetime sets how long issued access tokens live (default one hour, as Google's); d ≤ 0 restores it.
func (g *GoogleSTS) SetLifetime(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if d <= 0 {
		d = googleFederatedLifetime
	}
	g.lifetime = d
}

// SetClock replaces the clock tokens are issued and checked against (nil: time.Now).
func (g *GoogleSTS) SetClock(now func() time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now == nil {
		now = time.Now
	}
	g.now = now
}

// Issued returns every access token issued (the newest maxIssued), for leak scans.
func (g *GoogleSTS) Issued() []string { return g.issued.list() }

// Check returns what a live access token stands for.
func (g *GoogleSTS) Check(token string) (FederatedToken, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for t, ft := range g.tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			return ft, g.now().Before(ft.Expires)
		}
	}
	return FederatedToken{}, false
}

// normalizeAudience accepts the https: spelling of a provider name, as Google does.
func normalizeAudience(a string) string { return strings.TrimPrefix(a, "https:") }

type stsError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func writeSTSError(w http.ResponseWriter, status int, code, format string, args ...any) {
	writeJSON(w, status, stsError{Error: code, Description: fmt.Sprintf(format, args...)})
}

// Handler serves POST /v1/token.
func (g *GoogleSTS) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != googleSTSTokenPath {
			writeGoogleError(w, http.StatusNotFound, "NOT_FOUND", "The requested URL was not found on this server.")
			return
		}
		if r.Method != http.MethodPost {
			writeGoogleError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method "+r.Method+" is not allowed.")
			return
		}
		params, err := readSTSParams(r)
		if err != nil {
			writeSTSError(w, http.StatusBadRequest, "invalid_request", "%v", err)
			return
		}
		g.exchange(w, r.Context(), params)
	})
}

// readSTSParams reads a form (what client libraries send) or the JSON spelling of the same request.
func readSTSParams(r *http.Request) (map[string]string, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSTSBody+1))
	if err != nil {
		return nil, fmt.Errorf("could not read the request body")
	}
	if len(body) > maxSTSBody {
		return nil, fmt.Errorf("request body too large")
	}
	out := map[string]string{}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("invalid JSON payload")
		}
		camel := map[string]string{"grantType": "grant_type", "requestedTokenType": "requested_token_type",
			"subjectToken": "subject_token", "subjectTokenType": "subject_token_type"}
		for k, v := range m {
			if s, ok := v.(string); ok {
				if sn, ok := camel[k]; ok {
					k = sn
				}
				out[k] = s
			}
		}
		return out, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("malformed form body")
	}
	for k := range form {
		out[k] = form.Get(k)
	}
	return out, nil
}

func (g *GoogleSTS) exchange(w http.ResponseWriter, ctx context.Context, p map[string]string) {
	if p["grant_type"] != TokenExchangeGrant {
		writeSTSError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type %q.", p["grant_type"])
		return
	}
	if rt := p["requested_token_type"]; rt != AccessTokenType {
		writeSTSError(w, http.StatusBadRequest, "invalid_request", "Invalid value for \"requested_token_type\": %q.", rt)
		return
	}
	if p["subject_token"] == "" {
		writeSTSError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: subject_token.")
		return
	}
	// "scope: ... Required when exchanging an external credential for a Google access token" (STS v1
	// token reference); the wording of the error is assumed.
	if strings.TrimSpace(p["scope"]) == "" {
		writeSTSError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: scope. It is required when exchanging an external credential for a Google access token.")
		return
	}
	g.mu.Lock()
	prov, ok := g.providers[normalizeAudience(p["audience"])]
	g.mu.Unlock()
	if !ok {
		writeSTSError(w, http.StatusBadRequest, "invalid_target",
			"The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.")
		return
	}
	if p["subject_token_type"] != AWSSubjectTokenType {
		writeSTSError(w, http.StatusBadRequest, "invalid_request", "Invalid subject_token_type %q for an AWS provider: use %s.", p["subject_token_type"], AWSSubjectTokenType)
		return
	}
	req, err := parseAWSSubject(p["subject_token"], prov.Audience)
	if err != nil {
		writeSTSError(w, http.StatusBadRequest, "invalid_grant", "%v", err)
		return
	}
	caller, err := g.callerIdentity(ctx, req)
	if err != nil {
		writeSTSError(w, http.StatusBadRequest, "invalid_grant", "%v", err)
		return
	}
	if caller.Account != prov.Account {
		writeSTSError(w, http.StatusBadRequest, "invalid_grant", "The AWS account %s is not the account configured on the provider.", caller.Account)
		return
	}
	if len(prov.Roles) > 0 && !containsString(prov.Roles, assumedRole(caller.Arn)) {
		writeSTSError(w, http.StatusBadRequest, "unauthorized_client", "The given credential is rejected by the attribute condition.")
		return
	}
	tok := "ya29.d.sandbox-" + randomHex(40)
	g.mu.Lock()
	lifetime := g.lifetime
	g.tokens[tok] = FederatedToken{Subject: caller.Arn, Account: caller.Account, Provider: prov.Audience, Expires: g.now().Add(lifetime)}
	g.mu.Unlock()
	g.issued.add(tok)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":      tok,
		"issued_token_type": AccessTokenType,
		"token_type":        "Bearer",
		"expires_in":        int(lifetime / time.Second),
	})
}

// awsRequest is the subject token: the GetCallerIdentity request as Google's libraries serialize it.
type awsRequest struct {
	URL     string `json:"url"`
	Method  string `json:"method"`
	Headers []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"headers"`
}

// parseAWSSubject decodes and checks the serialized request the way Google does before calling AWS.
func parseAWSSubject(subject, audience string) (*http.Request, error) {
	if u, err := url.QueryUnescape(subject); err == nil {
		subject = u
	}
	var ar awsRequest
	if err := json.Unmarshal([]byte(subject), &ar); err != nil {
		return nil, describe("The AWS subject token is not a serialized GetCallerIdentity request.")
	}
	u, err := url.Parse(ar.URL)
	if err != nil || u.Scheme != "https" || !awsSTSHostRe.MatchString(u.Host) {
		return nil, describe("The AWS request must target an AWS STS endpoint (https://sts[.REGION].amazonaws.com), not %q.", ar.URL)
	}
	q := u.Query()
	if q.Get("Action") != "GetCallerIdentity" || q.Get("Version") != "2011-06-15" || len(q) != 2 {
		return nil, describe("The AWS request must be Action=GetCallerIdentity&Version=2011-06-15.")
	}
	if ar.Method != http.MethodPost {
		return nil, describe("The AWS request must use POST, not %q.", ar.Method)
	}
	h := http.Header{}
	host := ""
	for _, kv := range ar.Headers {
		if strings.EqualFold(kv.Key, "host") {
			host = kv.Value
			continue
		}
		h.Add(kv.Key, kv.Value)
	}
	if host != u.Host {
		return nil, describe("The AWS request's host header %q does not match its URL.", host)
	}
	if h.Get("Authorization") == "" || h.Get("X-Amz-Date") == "" {
		return nil, describe("The AWS request is not signed: Authorization and x-amz-date are required.")
	}
	// Google's libraries send the target header either way: golang.org/x/oauth2 signs it,
	// google-auth-python adds it after signing ("Including this header as part of the signature is
	// recommended"); Google accepts both, and requires it to name the audience.
	target := h.Get("X-Goog-Cloud-Target-Resource")
	if normalizeAudience(target) != normalizeAudience(audience) {
		return nil, describe("The x-goog-cloud-target-resource header %q does not match the audience.", target)
	}
	// AWS refuses a signature scoped to another region than the endpoint's ("Credential should be
	// scoped to a valid region"); the global endpoint is us-east-1's.
	if region, want := scopeRegion(h.Get("Authorization")), endpointRegion(u.Host); region != want {
		return nil, describe("The AWS request is not valid: AWS STS answered 403 SignatureDoesNotMatch (Credential should be scoped to a valid region, not '%s': %s is %s's endpoint).", region, u.Host, want)
	}
	r, err := http.NewRequest(http.MethodPost, "https://"+u.Host+"/?"+u.RawQuery, nil)
	if err != nil {
		return nil, err
	}
	r.Host = host
	r.Header = h
	return r, nil
}

// scopeRegion is the region of a SigV4 Authorization header's credential scope
// (Credential=AKID/DATE/REGION/SERVICE/aws4_request).
func scopeRegion(auth string) string {
	_, after, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ := strings.Cut(after, ",")
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[2]
}

// endpointRegion is the region an STS host serves: sts.REGION.amazonaws.com, or us-east-1 for the global
// sts.amazonaws.com.
func endpointRegion(host string) string {
	if r, ok := strings.CutSuffix(strings.TrimPrefix(host, "sts."), ".amazonaws.com"); ok && r != "" {
		return r
	}
	return "us-east-1"
}

type callerIdentity struct {
	Arn     string `xml:"GetCallerIdentityResult>Arn"`
	UserID  string `xml:"GetCallerIdentityResult>UserId"`
	Account string `xml:"GetCallerIdentityResult>Account"`
}

// callerIdentity sends the request, exactly as signed, to AWS STS. The sandbox's STS listens on
// 127.0.0.1, so only the connection's destination changes: the Host header (which the signature
// covers) stays the real STS name.
func (g *GoogleSTS) callerIdentity(ctx context.Context, r *http.Request) (*callerIdentity, error) {
	out := r.Clone(ctx)
	u, err := url.Parse(g.awsSTS + "/?" + r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	out.URL = u
	out.Body = http.NoBody
	resp, err := g.client.Do(out)
	if err != nil {
		return nil, describe("Unable to verify the AWS request with AWS STS.")
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxSTSBody))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code string `xml:"Error>Code"`
		}
		_ = xml.Unmarshal(body, &e)
		return nil, describe("The AWS request is not valid: AWS STS answered %d %s.", resp.StatusCode, e.Code)
	}
	var ci callerIdentity
	if err := xml.NewDecoder(bytes.NewReader(body)).Decode(&ci); err != nil || ci.Account == "" || ci.Arn == "" {
		return nil, describe("Unable to read AWS STS's GetCallerIdentity response.")
	}
	return &ci, nil
}

// assumedRole is the role name of arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION ("" otherwise).
func assumedRole(arn string) string {
	_, rest, ok := strings.Cut(arn, ":assumed-role/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

func containsString(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// RegistryAuth makes next answer like Artifact Registry: every /v2/ request needs "Authorization: Bearer
// TOKEN" with a live access token from this STS, and RegistryTokenPath trades Basic
// oauth2accesstoken:TOKEN (what docker credential helpers send) for a registry token, which here is the
// access token itself.
func (g *GoogleSTS) RegistryAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == RegistryTokenPath {
			user, pass, ok := r.BasicAuth()
			if !ok || user != "oauth2accesstoken" {
				w.Header().Set("WWW-Authenticate", `Basic realm="`+registryRealm(r)+`"`)
				writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required: user oauth2accesstoken with a Google access token")
				return
			}
			ft, live := g.Check(pass)
			if !live {
				writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "the access token is not valid")
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"token": pass, "access_token": pass,
				"expires_in": int(time.Until(ft.Expires) / time.Second)})
			return
		}
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if _, live := g.Check(strings.TrimSpace(tok)); !strings.EqualFold(scheme, "bearer") || !live {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service=%q`, registryRealm(r), r.Host))
			writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func registryRealm(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + RegistryTokenPath
}

func writeRegistryError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// stsFault is an error_description in Google's own wording (sentences, capitalised).
type stsFault string

func (f stsFault) Error() string { return string(f) }

func describe(format string, args ...any) error { return stsFault(fmt.Sprintf(format, args...)) }
