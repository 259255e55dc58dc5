package iam

import (
	"bytes"
	"encoding/base64"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

type setOp uint8

const (
	setNone setOp = iota
	setAny        // ForAnyValue:
	setAll        // ForAllValues:
)

// operator is a parsed condition operator name such as "ForAnyValue:StringLikeIfExists".
type operator struct {
	set      setOp
	base     string
	ifExists bool
	cmp      comparator
	negated  bool
}

// comparator reports whether one context value matches one policy value.
type comparator func(policy, ctx string, ec *evalContext) bool

type baseOp struct {
	cmp     comparator
	negated bool
}

var baseOps = map[string]baseOp{
	"StringEquals":              {strEquals, false},
	"StringNotEquals":           {strEquals, true},
	"StringEqualsIgnoreCase":    {strEqualFold, false},
	"StringNotEqualsIgnoreCase": {strEqualFold, true},
	"StringLike":                {strLike, false},
	"StringNotLike":             {strLike, true},
	"NumericEquals":             {numeric(func(c int) bool { return c == 0 }), false},
	"NumericNotEquals":          {numeric(func(c int) bool { return c == 0 }), true},
	"NumericLessThan":           {numeric(func(c int) bool { return c < 0 }), false},
	"NumericLessThanEquals":     {numeric(func(c int) bool { return c <= 0 }), false},
	"NumericGreaterThan":        {numeric(func(c int) bool { return c > 0 }), false},
	"NumericGreaterThanEquals":  {numeric(func(c int) bool { return c >= 0 }), false},
	"DateEquals":                {date(func(c int) bool { return c == 0 }), false},
	"DateNotEquals":             {date(func(c int) bool { return c == 0 }), true},
	"DateLessThan":              {date(func(c int) bool { return c < 0 }), false},
	"DateLessThanEquals":        {date(func(c int) bool { return c <= 0 }), false},
	"DateGreaterThan":           {date(func(c int) bool { return c > 0 }), false},
	"DateGreaterThanEquals":     {date(func(c int) bool { return c >= 0 }), false},
	"Bool":                      {boolEquals, false},
	"BinaryEquals":              {binaryEquals, false},
	"IpAddress":                 {ipIn, false},
	"NotIpAddress":              {ipIn, true},
	"ArnEquals":                 {arnCmp, false},
	"ArnLike":                   {arnCmp, false},
	"ArnNotEquals":              {arnCmp, true},
	"ArnNotLike":                {arnCmp, true},
	"Null":                      {nil, false},
}

// parseOperator validates an operator name; names are case-sensitive as in IAM.
func parseOperator(name string) (operator, error) {
	op := operator{}
	rest := name
	if r, ok := strings.CutPrefix(rest, "ForAnyValue:"); ok {
		op.set, rest = setAny, r
	} else if r, ok := strings.CutPrefix(rest, "ForAllValues:"); ok {
		op.set, rest = setAll, r
	}
	if r, ok := strings.CutSuffix(rest, "IfExists"); ok {
		op.ifExists, rest = true, r
	}
	b, ok := baseOps[rest]
	if !ok {
		return op, malformed("invalid condition type %q", name)
	}
	if rest == "Null" && (op.ifExists || op.set != setNone) {
		return op, malformed("invalid condition type %q: Null takes no IfExists or set operator", name)
	}
	op.base, op.cmp, op.negated = rest, b.cmp, b.negated
	return op, nil
}

// conditionsHold ANDs every operator and every key of a Condition block.
func conditionsHold(cond map[string]map[string][]string, ec *evalContext) bool {
	for name, keys := range cond {
		op, err := parseOperator(name)
		if err != nil {
			return false // Parse rejects these; a hand-built Statement just never matches
		}
		for key, vals := range keys {
			if !op.holds(key, vals, ec) {
				return false
			}
		}
	}
	return true
}

// holds evaluates one key under the operator. Policy values are ORed.
func (op operator) holds(key string, policy []string, ec *evalContext) bool {
	ctx, present := ec.value(key)
	if op.base == "Null" {
		for _, v := range policy {
			switch strings.ToLower(v) {
			case "true":
				if !present {
					return true
				}
			case "false":
				if present {
					return true
				}
			}
		}
		return false
	}
	if !present {
		switch {
		case op.ifExists:
			return true
		case op.set == setAll:
			return true // vacuously every (no) value matches
		case op.set == setAny:
			return false
		default:
			return op.negated // "the key is not there, so it does not equal x"
		}
	}
	anyPolicy := func(c string) bool {
		for _, p := range policy {
			if op.cmp(p, c, ec) {
				return true
			}
		}
		return false
	}
	switch op.set {
	case setAny:
		for _, c := range ctx {
			if anyPolicy(c) != op.negated {
				return true
			}
		}
		return false
	case setAll:
		for _, c := range ctx {
			if anyPolicy(c) == op.negated {
				return false
			}
		}
		return true
	default:
		// A single-valued operator on several context values: positive operators hold if
		// any value matches, negated ones if none does.
		for _, c := range ctx {
			if anyPolicy(c) {
				return !op.negated
			}
		}
		return op.negated
	}
}

func strEquals(p, c string, ec *evalContext) bool {
	if ec.vars && strings.Contains(p, "${") {
		t, ok := compile(p, ec, false)
		return ok && glob(t, c)
	}
	return p == c
}

func strEqualFold(p, c string, ec *evalContext) bool {
	if ec.vars && strings.Contains(p, "${") {
		t, ok := compile(p, ec, false)
		if !ok {
			return false
		}
		var b strings.Builder
		for _, x := range t {
			b.WriteRune(x.r)
		}
		p = b.String()
	}
	return strings.EqualFold(p, c)
}

func strLike(p, c string, ec *evalContext) bool { return like(p, c, ec) }

func arnCmp(p, c string, ec *evalContext) bool { return arnLike(p, c, ec) }

func boolEquals(p, c string, _ *evalContext) bool {
	pb, err1 := strconv.ParseBool(strings.ToLower(p))
	cb, err2 := strconv.ParseBool(strings.ToLower(c))
	return err1 == nil && err2 == nil && pb == cb
}

func binaryEquals(p, c string, _ *evalContext) bool {
	pb, err1 := base64.StdEncoding.DecodeString(p)
	cb, err2 := base64.StdEncoding.DecodeString(c)
	return err1 == nil && err2 == nil && bytes.Equal(pb, cb)
}

// numeric compares ctx against policy exactly (big.Rat, so 10 and 10.0 are equal and no
// float rounding creeps in); unparsable values never match.
func numeric(ok func(int) bool) comparator {
	return func(p, c string, _ *evalContext) bool {
		pn, okP := parseNumber(p)
		cn, okC := parseNumber(c)
		return okP && okC && ok(cn.Cmp(pn))
	}
}

func parseNumber(s string) (*big.Rat, bool) {
	s = strings.TrimSpace(s)
	if !isDecimal(s) {
		return nil, false
	}
	return new(big.Rat).SetString(s)
}

// isDecimal accepts [-+]digits[.digits] only: big.Rat would also take exponents and hex
// floats ("0x1p99999999"), which cost unbounded time and memory.
func isDecimal(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	if s[0] == '-' || s[0] == '+' {
		s = s[1:]
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

func date(ok func(int) bool) comparator {
	return func(p, c string, _ *evalContext) bool {
		pt, okP := parseDate(p)
		ct, okC := parseDate(c)
		return okP && okC && ok(ct.Compare(pt))
	}
}

// parseDate accepts the ISO 8601 forms IAM documents and epoch seconds.
func parseDate(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

func ipIn(p, c string, _ *evalContext) bool {
	addr, err := netip.ParseAddr(c)
	if err != nil {
		return false
	}
	if pfx, err := netip.ParsePrefix(p); err == nil {
		return pfx.Contains(addr.Unmap())
	}
	pa, err := netip.ParseAddr(p)
	return err == nil && pa.Unmap() == addr.Unmap()
}
