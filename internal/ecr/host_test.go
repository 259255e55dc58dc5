package ecr

import "testing"

func TestParseHost(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Registry
		ok   bool
	}{
		{"111122223333.dkr.ecr.us-east-1.amazonaws.com", Registry{Host: "111122223333.dkr.ecr.us-east-1.amazonaws.com", Account: "111122223333", Region: "us-east-1", Partition: "aws"}, true},
		{"https://111122223333.dkr.ecr.eu-west-1.amazonaws.com/v2/", Registry{Host: "111122223333.dkr.ecr.eu-west-1.amazonaws.com", Account: "111122223333", Region: "eu-west-1", Partition: "aws"}, true},
		{"111122223333.dkr.ecr.us-east-1.amazonaws.com:443", Registry{Host: "111122223333.dkr.ecr.us-east-1.amazonaws.com:443", Account: "111122223333", Region: "us-east-1", Partition: "aws"}, true},
		{"111122223333.dkr.ecr-fips.us-gov-west-1.amazonaws.com", Registry{Host: "111122223333.dkr.ecr-fips.us-gov-west-1.amazonaws.com", Account: "111122223333", Region: "us-gov-west-1", FIPS: true, Partition: "aws-us-gov"}, true},
		{"111122223333.dkr-ecr.us-east-1.on.aws", Registry{Host: "111122223333.dkr-ecr.us-east-1.on.aws", Account: "111122223333", Region: "us-east-1", DualStack: true, Partition: "aws"}, true},
		{"111122223333.dkr-ecr-fips.us-east-2.on.aws", Registry{Host: "111122223333.dkr-ecr-fips.us-east-2.on.aws", Account: "111122223333", Region: "us-east-2", FIPS: true, DualStack: true, Partition: "aws"}, true},
		{"111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn", Registry{Host: "111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn", Account: "111122223333", Region: "cn-north-1", Partition: "aws-cn"}, true},
		{"111122223333.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn", Registry{Host: "111122223333.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn", Account: "111122223333", Region: "cn-northwest-1", DualStack: true, Partition: "aws-cn"}, true},
		{"111122223333.dkr.ecr.us-iso-east-1.c2s.ic.gov", Registry{Host: "111122223333.dkr.ecr.us-iso-east-1.c2s.ic.gov", Account: "111122223333", Region: "us-iso-east-1", Partition: "aws-iso"}, true},
		{"111122223333.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", Registry{Host: "111122223333.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", Account: "111122223333", Region: "us-isob-east-1", Partition: "aws-iso-b"}, true},
		{"111122223333.DKR.ECR.US-EAST-1.AMAZONAWS.COM", Registry{Host: "111122223333.dkr.ecr.us-east-1.amazonaws.com", Account: "111122223333", Region: "us-east-1", Partition: "aws"}, true},
		{"public.ecr.aws", Registry{}, false},
		{"11112222333.dkr.ecr.us-east-1.amazonaws.com", Registry{}, false},          // 11 digits
		{"111122223333.dkr.ecr.us-east-1.amazonaws.com.evil.io", Registry{}, false}, // anchored
		{"evil.io/111122223333.dkr.ecr.us-east-1.amazonaws.com", Registry{}, false},
		{"https://index.docker.io/v1/", Registry{}, false},
		{"127.0.0.1:5000", Registry{}, false},
		{"", Registry{}, false},
	} {
		got, ok := ParseHost(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseHost(%q) = %+v %v, want %+v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"https://index.docker.io/v1/": "index.docker.io",
		"127.0.0.1:5000":              "127.0.0.1:5000",
		"http://127.0.0.1:5000/":      "127.0.0.1:5000",
		"Registry.Example/path":       "registry.example",
		"  host:1  \n":                "host:1",
		"":                            "",
	} {
		if got := HostOf(in); got != want {
			t.Errorf("HostOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseHostMap(t *testing.T) {
	m, err := ParseHostMap("127.0.0.1:5000=111122223333:us-east-1, http://127.0.0.1:6000=444455556666:eu-west-1;proxy.internal=111122223333:us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m["127.0.0.1:6000"].Account != "444455556666" || m["127.0.0.1:6000"].Region != "eu-west-1" || !m["proxy.internal"].Mapped {
		t.Errorf("%+v", m)
	}
	if got := m.String(); got != "127.0.0.1:5000=111122223333:us-east-1,127.0.0.1:6000=444455556666:eu-west-1,proxy.internal=111122223333:us-east-1" {
		t.Errorf("String() = %s", got)
	}
	if m, err := ParseHostMap(""); err != nil || len(m) != 0 {
		t.Errorf("empty: %v %v", m, err)
	}
	for _, bad := range []string{"127.0.0.1:5000", "h=111122223333", "h=1234:us-east-1", "h=111122223333:useast1", "=111122223333:us-east-1",
		"h=111122223333:us-east-1,h=444455556666:us-east-1"} {
		if _, err := ParseHostMap(bad); err == nil {
			t.Errorf("ParseHostMap(%q) accepted", bad)
		}
	}
}
