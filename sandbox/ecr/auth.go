package ecr

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"sync"
	"time"

	"github.com/ecrpush/ecrpush/sandbox/world"
)

// token is one registry password issued by GetAuthorizationToken.
type token struct {
	session *world.Session
	region  string // the region it was issued in; registries elsewhere do not know it
	expires time.Time
}

// tokenStore maps passwords to the session that asked for them.
type tokenStore struct {
	mu     sync.RWMutex
	byPass map[string]*token
	order  []string
}

func newTokenStore() *tokenStore { return &tokenStore{byPass: map[string]*token{}} }

// issue creates a password shaped like ECR's (base64 of a JSON envelope around random
// ciphertext, a couple of KiB long) so clients meet realistic lengths.
func (ts *tokenStore) issue(sess *world.Session, region string, expires time.Time) string {
	payload := make([]byte, 1024)
	datakey := make([]byte, 184)
	_, _ = rand.Read(payload)
	_, _ = rand.Read(datakey)
	env, _ := json.Marshal(map[string]any{
		"payload":    base64.StdEncoding.EncodeToString(payload),
		"datakey":    base64.StdEncoding.EncodeToString(datakey),
		"version":    "2",
		"type":       "DATA_KEY",
		"expiration": expires.Unix(),
	})
	pass := base64.StdEncoding.EncodeToString(env)
	ts.mu.Lock()
	ts.byPass[pass] = &token{session: sess, region: region, expires: expires}
	ts.order = append(ts.order, pass)
	ts.mu.Unlock()
	return pass
}

func (ts *tokenStore) lookup(pass string) (*token, bool) {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	t, ok := ts.byPass[pass]
	return t, ok
}

func (ts *tokenStore) passwords() []string {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return append([]string(nil), ts.order...)
}
