package kubesecret

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		ns, name string
		ok       bool
	}{
		{"apps", "ecr-pull", true},
		{"a", "ecr.pull.v1", true},
		{strings.Repeat("a", 63), strings.Repeat("b", 253), true},
		{strings.Repeat("a", 64), "x", false},
		{"apps", strings.Repeat("b", 254), false},
		{"Apps", "x", false},
		{"apps", "X", false},
		{"a.b", "x", false}, // namespaces are labels: no dots
		{"-a", "x", false},
		{"apps", "x_y", false},
		{"", "x", false},
		{"apps", "", false},
	} {
		if err := Validate(tc.ns, tc.name); (err == nil) != tc.ok {
			t.Errorf("Validate(%q, %q) = %v, want ok=%v", tc.ns, tc.name, err, tc.ok)
		}
	}
}

func TestManifestRoundTrips(t *testing.T) {
	auths := map[string]Auth{
		"111122223333.dkr.ecr.us-east-1.amazonaws.com": {Username: "AWS", Password: "p1"},
		"444455556666.dkr.ecr.eu-west-1.amazonaws.com": {Username: "AWS", Password: `p"2:\`},
	}
	exp := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, asJSON := range []bool{false, true} {
		b, err := Manifest("apps", "ecr-pull", auths, exp, asJSON)
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			APIVersion, Kind, Type string
			Metadata               struct {
				Name, Namespace string
				Annotations     map[string]string
			}
			Data map[string]string
		}
		if err := yaml.Unmarshal(b, &s); err != nil {
			t.Fatalf("json=%v: %v\n%s", asJSON, err, b)
		}
		if s.APIVersion != "v1" || s.Kind != "Secret" || s.Type != Type || s.Metadata.Name != "ecr-pull" || s.Metadata.Namespace != "apps" ||
			s.Metadata.Annotations[ExpiresAnnotation] != "2030-01-01T12:00:00Z" {
			t.Errorf("json=%v: %+v", asJSON, s)
		}
		raw, err := base64.StdEncoding.DecodeString(s.Data[Key])
		if err != nil {
			t.Fatal(err)
		}
		var cfg DockerConfig
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		for host, a := range auths {
			got := cfg.Auths[host]
			dec, _ := base64.StdEncoding.DecodeString(got.Auth)
			if got.Username != a.Username || got.Password != a.Password || string(dec) != a.Username+":"+a.Password {
				t.Errorf("json=%v %s: %+v", asJSON, host, got)
			}
		}
	}
	if _, err := Manifest("apps", "x", nil, exp, false); err == nil {
		t.Error("a Secret without registries")
	}
}
