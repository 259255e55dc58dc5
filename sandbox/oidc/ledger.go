package oidc

import "sync"

// maxIssued bounds how many issued tokens a service remembers for leak scans; a long
// benchmark would otherwise grow memory without limit. The oldest are dropped first.
const maxIssued = 10000

// ledger remembers issued tokens so the sandbox can scan logs and output for leaks.
type ledger struct {
	mu     sync.Mutex
	tokens []string
}

func (l *ledger) add(tok string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tokens) >= maxIssued {
		l.tokens = append(l.tokens[:0], l.tokens[len(l.tokens)-maxIssued+1:]...)
	}
	l.tokens = append(l.tokens, tok)
}

func (l *ledger) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.tokens...)
}
