package oidc

import (
	"errors"
	"net/http"
	"sync"
	"time"
)

// Google ID tokens, from the metadata server and from generateIdToken alike, live one hour.
const googleIDTokenLifetime = time.Hour

// Google is one GCE VM's view of Google identity: its metadata server (project, default
// service account, access token, identity tokens) and the IAM Credentials API that turns the
// access token into ID tokens for the service account.
type Google struct {
	iss              *Issuer
	projectID        string
	numericProjectID string
	email            string
	uniqueID         string
	accessToken      string
	instanceID       string
	instanceName     string
	zone             string
	created          time.Time
	issued           ledger

	mu                  sync.Mutex
	identityDisabled    bool
	tokenCreator        bool
	generateAccessToken http.Handler // IAM Credentials generateAccessToken (SetAccessTokenHandler)
}

// NewGoogle returns a metadata server and IAM Credentials API for service account email
// (unique id uniqueID, the 21-digit "sub") in projectID, signing ID tokens with iss.
func NewGoogle(iss *Issuer, projectID, email, uniqueID string) *Google {
	return &Google{
		iss:              iss,
		projectID:        projectID,
		numericProjectID: stableNumber("project:"+projectID, 12),
		email:            email,
		uniqueID:         uniqueID,
		accessToken:      "ya29.sandbox-" + randomHex(48),
		instanceID:       stableNumber("instance:"+projectID+"/"+email, 19),
		instanceName:     "ecrpush-sandbox-vm",
		zone:             "us-central1-a",
		created:          time.Now(),
		tokenCreator:     true,
	}
}

// SetIdentityDisabled makes the metadata identity endpoint answer 404, as it does where the
// default service account has no identity (Cloud Build's default service account).
func (g *Google) SetIdentityDisabled(disabled bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.identityDisabled = disabled
}

// SetTokenCreator sets whether generateIdToken is allowed for the service account (default
// true: the account holds Service Account OpenID Connect Identity Token Creator on itself).
func (g *Google) SetTokenCreator(allowed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tokenCreator = allowed
}

func (g *Google) flags() (identityDisabled, tokenCreator bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.identityDisabled, g.tokenCreator
}

// AccessToken is the metadata server's OAuth access token for the default service account.
// It is random per Google, so leak tests can scan output for it.
func (g *Google) AccessToken() string { return g.accessToken }

// ProjectNumber is the numeric project id derived from the project id.
func (g *Google) ProjectNumber() string { return g.numericProjectID }

// Email is the service account's email.
func (g *Google) Email() string { return g.email }

// Issued returns every ID token minted so far (the newest maxIssued), for leak scans.
func (g *Google) Issued() []string { return g.issued.list() }

// IDToken mints what the metadata identity endpoint returns: with full, the email claims and
// the compute_engine block are added, as with format=full.
func (g *Google) IDToken(audience string, full bool) (string, error) {
	return g.mint(audience, full, full)
}

// mint signs a Google-layout ID token: azp and sub are the service account's unique id.
func (g *Google) mint(audience string, withEmail, withInstance bool) (string, error) {
	if audience == "" {
		return "", errors.New("oidc: google: empty audience")
	}
	now := time.Now()
	claims := map[string]any{
		"aud": audience,
		"azp": g.uniqueID,
		"sub": g.uniqueID,
		"iat": now.Unix(),
		"exp": now.Add(googleIDTokenLifetime).Unix(),
	}
	if withEmail {
		claims["email"] = g.email
		claims["email_verified"] = true
	}
	if withInstance {
		claims["google"] = map[string]any{"compute_engine": map[string]any{
			"instance_creation_timestamp": g.created.Unix(),
			"instance_id":                 g.instanceID,
			"instance_name":               g.instanceName,
			"project_id":                  g.projectID,
			"project_number":              g.numericProjectNumber(),
			"zone":                        g.zone,
		}}
	}
	tok, err := g.iss.Sign(claims)
	if err != nil {
		return "", err
	}
	g.issued.add(tok)
	return tok, nil
}

// numericProjectNumber is the project number as a JSON number, the way the compute_engine
// block carries it.
func (g *Google) numericProjectNumber() int64 {
	var n int64
	for _, r := range g.numericProjectID {
		n = n*10 + int64(r-'0')
	}
	return n
}
