package iam

import (
	"strings"
	"unicode/utf8"
)

// maxPattern bounds the patterns and subjects the matcher handles; the glob below is
// O(len(pattern)·len(subject)), so this keeps every match cheap even for fuzzed input.
const maxPattern = 4096

type tokKind uint8

const (
	tokLit tokKind = iota
	tokStar
	tokAny // ?
)

type tok struct {
	kind tokKind
	r    rune
}

// compile turns a pattern into tokens, substituting policy variables when vars is
// non-nil. It reports false when a variable has no value and no default, which makes the
// element that uses it match nothing (as in AWS). wild=false treats * and ? literally.
func compile(pattern string, vars *evalContext, wild bool) ([]tok, bool) {
	out := make([]tok, 0, len(pattern))
	for i := 0; i < len(pattern); {
		if vars != nil && vars.vars && strings.HasPrefix(pattern[i:], "${") {
			if end := strings.IndexByte(pattern[i:], '}'); end > 0 {
				val, ok := vars.variable(pattern[i+2 : i+end])
				if !ok {
					return nil, false
				}
				for _, r := range val {
					out = append(out, tok{tokLit, r}) // substituted values never act as wildcards
				}
				i += end + 1
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(pattern[i:])
		i += size
		switch {
		case wild && r == '*':
			out = append(out, tok{kind: tokStar})
		case wild && r == '?':
			out = append(out, tok{kind: tokAny})
		default:
			out = append(out, tok{tokLit, r})
		}
	}
	return out, true
}

// glob matches s against p with * (any run, including empty) and ? (exactly one rune).
// It backtracks only to the last star, so it runs in O(len(p)·len(s)).
func glob(p []tok, s string) bool {
	if len(s) > maxPattern || len(p) > maxPattern {
		return false
	}
	rs := []rune(s)
	pi, si, starP, starS := 0, 0, -1, 0
	for si < len(rs) {
		if pi < len(p) && (p[pi].kind == tokAny || p[pi].kind == tokLit && p[pi].r == rs[si]) {
			pi++
			si++
			continue
		}
		if pi < len(p) && p[pi].kind == tokStar {
			starP, starS = pi, si
			pi++
			continue
		}
		if starP >= 0 {
			starS++
			pi, si = starP+1, starS
			continue
		}
		return false
	}
	for pi < len(p) && p[pi].kind == tokStar {
		pi++
	}
	return pi == len(p)
}

// like is StringLike: case-sensitive, * and ? wildcards, policy variables substituted.
func like(pattern, s string, ec *evalContext) bool {
	p, ok := compile(pattern, ec, true)
	return ok && glob(p, s)
}

// actionMatches compares an action pattern ("ecr:Batch*") with an action, ignoring case.
func actionMatches(pattern, action string) bool {
	p, _ := compile(strings.ToLower(pattern), nil, true)
	return glob(p, strings.ToLower(action))
}

// arnLike is ArnLike/ArnEquals and Resource matching: each of the six colon-separated
// ARN components is matched separately (so a wildcard in the region cannot swallow the
// account), case-sensitively. Patterns or values that are not six-part ARNs are matched
// as a whole.
func arnLike(pattern, value string, ec *evalContext) bool {
	if pattern == "*" {
		return true
	}
	p, ok := compile(pattern, ec, true)
	if !ok {
		return false
	}
	pp := splitTokens(p, 6)
	vp := strings.SplitN(value, ":", 6)
	if len(pp) != 6 || len(vp) != 6 {
		return glob(p, value)
	}
	for i := range pp {
		if !glob(pp[i], vp[i]) {
			return false
		}
	}
	return true
}

// splitTokens splits tokens at literal colons into at most n parts.
func splitTokens(p []tok, n int) [][]tok {
	var out [][]tok
	start := 0
	for i, t := range p {
		if len(out) == n-1 {
			break
		}
		if t.kind == tokLit && t.r == ':' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}
