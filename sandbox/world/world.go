package world

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ecrpush/ecrpush/internal/iam"
)

// Errors returned by Lookup; the callers turn them into their protocol's error codes.
var (
	ErrUnknownKey = errors.New("the security token included in the request is invalid")
	ErrExpired    = errors.New("the security token included in the request is expired")
)

// World is the identity state of the sandbox: accounts, roles, users and every credential issued.
// It is safe for concurrent use.
type World struct {
	mu       sync.RWMutex
	accounts map[string]*Account
	sessions map[string]*Session // by access key id
	now      func() time.Time

	// CredentialLifetime caps what STS issues when the caller asks for more (0: no cap beyond the role's).
	CredentialLifetime time.Duration
}

// Account is one AWS account.
type Account struct {
	ID      string
	Name    string
	Regions []string
	Roles   map[string]*Role // by role name
	Users   map[string]*User // by user name
	// RegistryPolicy is the ECR registry policy per region (nil: none).
	RegistryPolicy map[string]*iam.Policy
	// RegistryPolicyText keeps the document as written, as GetRegistryPolicy returns it.
	RegistryPolicyText map[string]string
}

// Role is an IAM role.
type Role struct {
	Account            string
	Name               string
	Trust              *iam.Policy
	TrustText          string
	Policies           []*iam.Policy // identity policies
	MaxSessionDuration time.Duration // default 1h, as in IAM
}

// ARN is the role's ARN.
func (r *Role) ARN() string { return "arn:aws:iam::" + r.Account + ":role/" + r.Name }

// User is an IAM user with one long-term access key (for the default-chain flow).
type User struct {
	Account         string
	Name            string
	AccessKeyID     string
	SecretAccessKey string
	Policies        []*iam.Policy
}

// ARN is the user's ARN.
func (u *User) ARN() string { return "arn:aws:iam::" + u.Account + ":user/" + u.Name }

// Session is one set of issued credentials (or a user's long-term key).
type Session struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string // "" for a user's long-term key
	Expiration      time.Time
	Account         string
	Role            *Role // nil for a user key
	User            *User // nil for a role session
	SessionName     string
	Chained         bool // issued by AssumeRole from another role session
	// Subject and Provider record the web identity, when there was one.
	Subject  string
	Provider string
	Audience string
	Issued   time.Time
}

// ARN is the caller ARN as GetCallerIdentity reports it.
func (s *Session) ARN() string {
	if s.User != nil {
		return s.User.ARN()
	}
	return "arn:aws:sts::" + s.Account + ":assumed-role/" + s.Role.Name + "/" + s.SessionName
}

// UserID is the caller's unique id as GetCallerIdentity reports it.
func (s *Session) UserID() string {
	if s.User != nil {
		return "AIDA" + strings.ToUpper(idFor(s.User.ARN()))
	}
	return "AROA" + strings.ToUpper(idFor(s.Role.ARN())) + ":" + s.SessionName
}

// Principal is the session as an IAM policy principal.
func (s *Session) Principal() *iam.Principal {
	if s.User != nil {
		return &iam.Principal{Type: "AWS", ID: s.User.ARN(), Account: s.Account}
	}
	return &iam.Principal{Type: "AWS", ID: s.Role.ARN(), Account: s.Account}
}

// Policies are the identity policies that apply to the session.
func (s *Session) Policies() []*iam.Policy {
	if s.User != nil {
		return s.User.Policies
	}
	return s.Role.Policies
}

// New returns an empty world. now may be nil (time.Now).
func New(now func() time.Time) *World {
	if now == nil {
		now = time.Now
	}
	return &World{accounts: map[string]*Account{}, sessions: map[string]*Session{}, now: now}
}

// Now is the world's clock.
func (w *World) Now() time.Time { return w.now() }

// AddAccount adds (or returns the existing) account.
func (w *World) AddAccount(id, name string, regions []string) *Account {
	w.mu.Lock()
	defer w.mu.Unlock()
	if a, ok := w.accounts[id]; ok {
		return a
	}
	a := &Account{ID: id, Name: name, Regions: regions, Roles: map[string]*Role{}, Users: map[string]*User{},
		RegistryPolicy: map[string]*iam.Policy{}, RegistryPolicyText: map[string]string{}}
	w.accounts[id] = a
	return a
}

// Account returns the account with the given id.
func (w *World) Account(id string) (*Account, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	a, ok := w.accounts[id]
	return a, ok
}

// Accounts returns every account.
func (w *World) Accounts() []*Account {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make([]*Account, 0, len(w.accounts))
	for _, a := range w.accounts {
		out = append(out, a)
	}
	return out
}

// AddRole adds a role to an existing account.
func (w *World) AddRole(r *Role) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.accounts[r.Account]
	if !ok {
		return fmt.Errorf("role %s: account %s is not defined", r.Name, r.Account)
	}
	if r.MaxSessionDuration == 0 {
		r.MaxSessionDuration = time.Hour
	}
	a.Roles[r.Name] = r
	return nil
}

// AddUser adds a user with a long-term key; the key is generated when empty.
func (w *World) AddUser(u *User) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.accounts[u.Account]
	if !ok {
		return fmt.Errorf("user %s: account %s is not defined", u.Name, u.Account)
	}
	if u.AccessKeyID == "" {
		u.AccessKeyID = "AKIA" + randomID(16)
		u.SecretAccessKey = randomSecret(30)
	}
	a.Users[u.Name] = u
	w.sessions[u.AccessKeyID] = &Session{AccessKeyID: u.AccessKeyID, SecretAccessKey: u.SecretAccessKey,
		Account: u.Account, User: u, Issued: w.now()}
	return nil
}

// Role finds a role by ARN (arn:aws:iam::ACCOUNT:role/NAME, paths allowed).
func (w *World) Role(arn string) (*Role, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		return nil, false
	}
	name := parts[5][strings.LastIndex(parts[5], "/")+1:]
	w.mu.RLock()
	defer w.mu.RUnlock()
	a, ok := w.accounts[parts[4]]
	if !ok {
		return nil, false
	}
	r, ok := a.Roles[name]
	return r, ok
}

// Issue creates temporary credentials for a role session that expire after d.
func (w *World) Issue(r *Role, sessionName string, d time.Duration, chained bool) *Session {
	return w.IssueWith(r, sessionName, d, chained, nil)
}

// IssueWith is Issue with a hook that fills in more of the session (the web identity) before it is
// published, so no reader ever sees it half-written.
func (w *World) IssueWith(r *Role, sessionName string, d time.Duration, chained bool, fill func(*Session)) *Session {
	now := w.now()
	s := &Session{
		AccessKeyID:     "ASIA" + randomID(16),
		SecretAccessKey: randomSecret(30),
		SessionToken:    "IQoJb3JpZ2luX2VjE" + randomSecret(120),
		Expiration:      now.Add(d).Truncate(time.Second),
		Account:         r.Account,
		Role:            r,
		SessionName:     sessionName,
		Chained:         chained,
		Issued:          now,
	}
	if fill != nil {
		fill(s)
	}
	w.mu.Lock()
	w.sessions[s.AccessKeyID] = s
	w.mu.Unlock()
	return s
}

// Lookup returns the live session for an access key id: ErrUnknownKey or ErrExpired otherwise.
func (w *World) Lookup(accessKeyID string) (*Session, error) {
	w.mu.RLock()
	s, ok := w.sessions[accessKeyID]
	w.mu.RUnlock()
	if !ok {
		return nil, ErrUnknownKey
	}
	if s.SessionToken != "" && !w.now().Before(s.Expiration) {
		return nil, ErrExpired
	}
	return s, nil
}

// Sessions returns every credential issued so far (for leak scans in tests).
func (w *World) Sessions() []*Session {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make([]*Session, 0, len(w.sessions))
	for _, s := range w.sessions {
		out = append(out, s)
	}
	return out
}

// Authorize evaluates the session's identity policies for action on resource.
func (w *World) Authorize(s *Session, action, resource string, ctx map[string][]string) bool {
	return iam.Allowed(iam.Request{Action: action, Resource: resource, Context: ctx}, s.Policies()...)
}

// SetRegistryPolicy sets (text "" deletes) an account's ECR registry policy in a region.
func (w *World) SetRegistryPolicy(account, region, text string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.accounts[account]
	if !ok {
		return fmt.Errorf("account %s is not defined", account)
	}
	if text == "" {
		delete(a.RegistryPolicy, region)
		delete(a.RegistryPolicyText, region)
		return nil
	}
	p, err := iam.Parse([]byte(text))
	if err != nil {
		return err
	}
	a.RegistryPolicy[region] = p
	a.RegistryPolicyText[region] = text
	return nil
}

// RegistryPolicy returns an account's registry policy in a region.
func (w *World) RegistryPolicy(account, region string) (*iam.Policy, string, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	a, ok := w.accounts[account]
	if !ok {
		return nil, "", false
	}
	p, ok := a.RegistryPolicy[region]
	return p, a.RegistryPolicyText[region], ok
}

const upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = upper[int(b[i])%len(upper)]
	}
	return string(b)
}

func randomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.TrimRight(base64.StdEncoding.EncodeToString(b), "=")
}

// idFor derives a stable pseudo unique id for an ARN.
func idFor(arn string) string {
	s := strings.TrimRight(base32.StdEncoding.EncodeToString([]byte(arn)), "=")
	if len(s) > 17 {
		s = s[len(s)-17:]
	}
	return s
}
