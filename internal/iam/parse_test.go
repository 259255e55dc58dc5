package iam

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseShapes(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Id":"x","Statement":{"Sid":"One","Effect":"Allow",
		"Principal":{"AWS":["111122223333","arn:aws:iam::444455556666:root"],"Federated":"accounts.google.com"},
		"Action":"ecr:PutImage","Resource":["arn:aws:ecr:us-east-1:111122223333:repository/a"],
		"Condition":{"NumericLessThan":{"sts:DurationSeconds":[900, 3600.5]},"Bool":{"aws:SecureTransport":true}}}}`)
	want := Statement{
		Sid: "One", Effect: "Allow",
		Principal: map[string][]string{"AWS": {"111122223333", "arn:aws:iam::444455556666:root"}, "Federated": {"accounts.google.com"}},
		Action:    []string{"ecr:PutImage"},
		Resource:  []string{"arn:aws:ecr:us-east-1:111122223333:repository/a"},
		Condition: map[string]map[string][]string{
			"NumericLessThan": {"sts:DurationSeconds": {"900", "3600.5"}},
			"Bool":            {"aws:SecureTransport": {"true"}},
		},
	}
	if len(p.Statement) != 1 || !reflect.DeepEqual(p.Statement[0], want) {
		t.Fatalf("got %+v\nwant %+v", p.Statement, want)
	}
	star := mustParse(t, `{"Statement":[{"Effect":"Deny","Principal":"*","NotAction":"*"}]}`)
	if !reflect.DeepEqual(star.Statement[0].Principal, map[string][]string{"*": {"*"}}) {
		t.Fatalf("star principal: %v", star.Statement[0].Principal)
	}
}

func TestParseRejects(t *testing.T) {
	base := func(stmt string) string { return `{"Version":"2012-10-17","Statement":[` + stmt + `]}` }
	tests := map[string]string{
		"not JSON":               `{"Version":`,
		"array document":         `[]`,
		"trailing data":          `{"Statement":{"Effect":"Allow","Action":"*"}} x`,
		"bad version":            `{"Version":"2020-01-01","Statement":{"Effect":"Allow","Action":"*"}}`,
		"unknown top element":    `{"Version":"2012-10-17","Statements":{"Effect":"Allow","Action":"*"}}`,
		"missing Statement":      `{"Version":"2012-10-17"}`,
		"empty Statement":        `{"Version":"2012-10-17","Statement":[]}`,
		"statement not object":   `{"Version":"2012-10-17","Statement":["x"]}`,
		"unknown effect":         base(`{"Effect":"allow","Action":"*"}`),
		"missing effect":         base(`{"Action":"*"}`),
		"missing action":         base(`{"Effect":"Allow","Resource":"*"}`),
		"action and NotAction":   base(`{"Effect":"Allow","Action":"*","NotAction":"ecr:*"}`),
		"action without vendor":  base(`{"Effect":"Allow","Action":"PutImage"}`),
		"empty action list":      base(`{"Effect":"Allow","Action":[]}`),
		"action not string":      base(`{"Effect":"Allow","Action":7}`),
		"resource not ARN":       base(`{"Effect":"Allow","Action":"*","Resource":"repository/x"}`),
		"both resource kinds":    base(`{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}`),
		"unknown element":        base(`{"Effect":"Allow","Action":"*","Resources":"*"}`),
		"string principal":       base(`{"Effect":"Allow","Action":"*","Principal":"111122223333"}`),
		"unknown principal type": base(`{"Effect":"Allow","Action":"*","Principal":{"Users":"x"}}`),
		"wildcard principal ARN": base(`{"Effect":"Allow","Action":"*","Principal":{"AWS":"arn:aws:iam::111122223333:role/*"}}`),
		"garbled AWS principal":  base(`{"Effect":"Allow","Action":"*","Principal":{"AWS":"alice"}}`),
		"both principal kinds":   base(`{"Effect":"Allow","Action":"*","Principal":"*","NotPrincipal":{"AWS":"111122223333"}}`),
		"unknown operator":       base(`{"Effect":"Allow","Action":"*","Condition":{"StringMatches":{"aws:x":"y"}}}`),
		"lower-case operator":    base(`{"Effect":"Allow","Action":"*","Condition":{"stringequals":{"aws:x":"y"}}}`),
		"NullIfExists":           base(`{"Effect":"Allow","Action":"*","Condition":{"NullIfExists":{"aws:x":"true"}}}`),
		"key without vendor":     base(`{"Effect":"Allow","Action":"*","Condition":{"StringEquals":{"x":"y"}}}`),
		"object condition value": base(`{"Effect":"Allow","Action":"*","Condition":{"StringEquals":{"aws:x":{"y":1}}}}`),
		"null condition value":   base(`{"Effect":"Allow","Action":"*","Condition":{"StringEquals":{"aws:x":null}}}`),
		"empty condition keys":   base(`{"Effect":"Allow","Action":"*","Condition":{"StringEquals":{}}}`),
		"duplicate Sid":          base(`{"Sid":"a","Effect":"Allow","Action":"*"},{"Sid":"a","Effect":"Deny","Action":"*"}`),
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(doc))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%s) = %v, want ErrMalformed", doc, err)
			}
		})
	}
}

func TestParseKinds(t *testing.T) {
	identityWithPrincipal := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}`
	identityNoResource := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*"}}`
	trustWithResource := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","Resource":"*"}}`
	trustBadAction := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"ecr:PutImage"}}`
	trustOK := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["sts:AssumeRole","sts:TagSession"]}}`
	for _, tc := range []struct {
		name  string
		parse func([]byte) (*Policy, error)
		doc   string
		ok    bool
	}{
		{"identity with principal", ParseIdentity, identityWithPrincipal, false},
		{"identity without resource", ParseIdentity, identityNoResource, false},
		{"resource without principal", ParseResource, identityNoResource, false},
		{"trust with resource", ParseTrust, trustWithResource, false},
		{"trust with non-sts action", ParseTrust, trustBadAction, false},
		{"trust ok", ParseTrust, trustOK, true},
	} {
		_, err := tc.parse([]byte(tc.doc))
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
