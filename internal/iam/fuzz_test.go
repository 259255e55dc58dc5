package iam

import "testing"

// FuzzParseEvaluate parses arbitrary documents and evaluates whatever parses: neither may panic.
func FuzzParseEvaluate(f *testing.F) {
	seeds := []string{
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"NotAction":"s?s:*","NotResource":"arn:aws:ecr:*:*:repository/${aws:username}"}]}`,
		`{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"ForAllValues:StringLikeIfExists":{"aws:TagKeys":["a*",1,true]},"Null":{"aws:x":"true"},"DateLessThan":{"aws:CurrentTime":"2030-01-01"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"NumericEquals":{"aws:n":"1e999"}}}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"arn:aws:ecr:${*}${?}${$}${a, 'b'}${:::","Condition":{"StringEquals":{"aws:x":"${aws:y}"}}}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "ecr:PutImage", "arn:aws:ecr:us-east-1:111122223333:repository/app", "aws:TagKeys", "abc")
	}
	f.Fuzz(func(t *testing.T, doc []byte, action, resource, key, value string) {
		p, err := Parse(doc)
		if err != nil {
			return
		}
		ctx := map[string][]string{key: {value}, "aws:username": {value}}
		for _, who := range []*Principal{nil, {Type: "AWS", ID: value, Account: "111122223333"}, {Type: "Federated", ID: value}} {
			r := Request{Principal: who, Action: action, Resource: resource, Context: ctx}
			d := p.Evaluate(r)
			if d < ImplicitDeny || d > ExplicitDeny {
				t.Fatalf("decision %d out of range", d)
			}
			_ = Allowed(r, p, p)
		}
	})
}
