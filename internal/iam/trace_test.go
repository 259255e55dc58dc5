package iam

import (
	"math/rand/v2"
	"testing"
)

// Trace must agree with Evaluate on every statement, and name the element that refused.
func TestTraceAgreesWithEvaluate(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Statement":[
	  {"Sid":"GitHub","Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
	   "Action":"sts:AssumeRoleWithWebIdentity",
	   "Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"},
	                "StringLike":{"token.actions.githubusercontent.com:sub":["repo:example/app:ref:refs/heads/main","repo:example/app:ref:refs/tags/v*"]}}},
	  {"Sid":"Google","Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity",
	   "Condition":{"StringEquals":{"accounts.google.com:aud":"100000000000000000001"}}}]}`)
	gh := &Principal{Type: "Federated", ID: "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"}
	ctx := func(aud, sub string) map[string][]string {
		return map[string][]string{"token.actions.githubusercontent.com:aud": {aud}, "token.actions.githubusercontent.com:sub": {sub}}
	}
	cases := []struct {
		name     string
		r        Request
		allow    bool
		missKeys []string // of the first statement
	}{
		{"main", Request{Principal: gh, Action: "sts:AssumeRoleWithWebIdentity", Context: ctx("sts.amazonaws.com", "repo:example/app:ref:refs/heads/main")}, true, nil},
		{"tag by wildcard", Request{Principal: gh, Action: "sts:AssumeRoleWithWebIdentity", Context: ctx("sts.amazonaws.com", "repo:example/app:ref:refs/tags/v1.2")}, true, nil},
		{"other branch", Request{Principal: gh, Action: "sts:AssumeRoleWithWebIdentity", Context: ctx("sts.amazonaws.com", "repo:example/app:ref:refs/heads/dev")}, false,
			[]string{"token.actions.githubusercontent.com:sub"}},
		{"both wrong", Request{Principal: gh, Action: "sts:AssumeRoleWithWebIdentity", Context: ctx("x", "y")}, false,
			[]string{"token.actions.githubusercontent.com:aud", "token.actions.githubusercontent.com:sub"}},
		{"absent keys", Request{Principal: gh, Action: "sts:AssumeRoleWithWebIdentity"}, false,
			[]string{"token.actions.githubusercontent.com:aud", "token.actions.githubusercontent.com:sub"}},
	}
	for _, tc := range cases {
		tr := p.Trace(tc.r)
		if len(tr) != 2 {
			t.Fatalf("%s: %d traces", tc.name, len(tr))
		}
		if got := p.Evaluate(tc.r) == Allow; got != tc.allow || tr[0].Applies != tc.allow {
			t.Errorf("%s: Evaluate allow=%v, Trace applies=%v, want %v", tc.name, got, tr[0].Applies, tc.allow)
		}
		var miss []string
		for _, c := range tr[0].Conditions {
			if !c.Holds {
				miss = append(miss, c.Key)
			}
		}
		if len(miss) != len(tc.missKeys) || tr[0].Misses() != len(tc.missKeys) {
			t.Errorf("%s: misses %v (%d), want %v", tc.name, miss, tr[0].Misses(), tc.missKeys)
		}
		if tr[1].Principal || tr[1].Applies || tr[1].Sid != "Google" {
			t.Errorf("%s: the Google statement %+v", tc.name, tr[1])
		}
	}
}

// For random requests over a small vocabulary, a statement applies in Trace exactly when
// Evaluate's decision says one does.
func TestTraceRandom(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Action":"s:*","Resource":"arn:aws:s::1:r/*","Condition":{"StringLike":{"x:k":"a*"},"StringNotEquals":{"x:j":"b"}}},
	  {"Effect":"Deny","Action":"s:Delete","Resource":"*","Condition":{"Null":{"x:k":"true"}}}]}`)
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(v ...string) string { return v[rng.IntN(len(v))] }
	for i := 0; i < 2000; i++ {
		r := Request{Action: pick("s:Get", "s:Delete", "t:Get"), Resource: pick("*", "arn:aws:s::1:r/x", "arn:aws:s::2:r/x"), Context: map[string][]string{}}
		if v := pick("", "a", "ab", "b"); v != "" {
			r.Context["x:k"] = []string{v}
		}
		if v := pick("", "b", "c"); v != "" {
			r.Context["x:j"] = []string{v}
		}
		want := p.Evaluate(r)
		got := ImplicitDeny
		for _, st := range p.Trace(r) {
			if st.Applies && st.Effect == "Deny" {
				got = ExplicitDeny
				break
			}
			if st.Applies {
				got = Allow
			}
		}
		if got != want {
			t.Fatalf("%+v: Trace says %v, Evaluate %v", r, got, want)
		}
	}
}
