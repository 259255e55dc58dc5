package cli_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"sigs.k8s.io/yaml"

	"github.com/ecrpush/ecrpush/internal/testenv"
	"github.com/ecrpush/ecrpush/sandbox"
)

// secretManifest is the part of core/v1 Secret the test reads; strict decoding refuses anything else.
type secretManifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Type string            `json:"type"`
	Data map[string]string `json:"data"`
}

// dockerAuths decodes a kube-secret manifest down to its registry credentials.
func dockerAuths(t *testing.T, manifest string, asJSON bool) (secretManifest, map[string]map[string]string) {
	t.Helper()
	var s secretManifest
	var err error
	if asJSON {
		err = json.Unmarshal([]byte(manifest), &s)
	} else {
		err = yaml.UnmarshalStrict([]byte(manifest), &s)
	}
	if err != nil {
		t.Fatalf("manifest does not decode: %v\n%s", err, manifest)
	}
	raw, err := base64.StdEncoding.DecodeString(s.Data[".dockerconfigjson"])
	if err != nil {
		t.Fatalf(".dockerconfigjson is not base64: %v", err)
	}
	var cfg struct {
		Auths map[string]map[string]string `json:"auths"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf(".dockerconfigjson is not a docker config: %v", err)
	}
	return s, cfg.Auths
}

func TestKubeSecret(t *testing.T) {
	cfg := sandbox.DefaultConfig()
	cfg.Accounts[0].Roles[0].MaxSessionDuration = sandbox.Dur(12 * time.Hour)
	sb := start(t, cfg)
	host := ciHost(sb)
	digest := pushed(t, "team/app")
	base := []string{"kube-secret", "--role-arn", ciRole, "--identity", "github", "--namespace", "apps", "--name", "ecr-pull",
		"--registry-hosts", host + "=" + sandbox.CIAccount + ":us-east-1", "--registry", host}

	for _, tc := range []struct {
		name   string
		args   []string
		json   bool
		warned bool
	}{
		{"yaml, 1h session", nil, false, true},
		{"json, 12h session", []string{"--output", "json", "--role-duration", "12h"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, append(append([]string{}, base...), tc.args...)...)
			if r.code != 0 {
				t.Fatalf("kube-secret: %s\n%s", r.errLine, r.stderr)
			}
			s, auths := dockerAuths(t, r.stdout, tc.json)
			if s.APIVersion != "v1" || s.Kind != "Secret" || s.Type != "kubernetes.io/dockerconfigjson" ||
				s.Metadata.Name != "ecr-pull" || s.Metadata.Namespace != "apps" || len(s.Data) != 1 {
				t.Errorf("secret %+v", s)
			}
			exp, err := time.Parse(time.RFC3339, s.Metadata.Annotations["ecrpush/expires-at"])
			if err != nil || time.Until(exp) <= 0 {
				t.Errorf("expiry annotation %q: %v", s.Metadata.Annotations["ecrpush/expires-at"], err)
			}
			a := auths[host]
			if len(auths) != 1 || a["username"] != "AWS" || a["password"] == "" ||
				a["auth"] != base64.StdEncoding.EncodeToString([]byte("AWS:"+a["password"])) {
				t.Fatalf("auths %v", auths)
			}
			if got, err := pull(host+"/team/app:v1", &authn.Basic{Username: a["username"], Password: a["password"]}); err != nil || got != digest {
				t.Errorf("pull with the secret's credentials: %s %v", got, err)
			}
			if warned := strings.Contains(r.stderr, "expires before a 6-hourly refresh"); warned != tc.warned {
				t.Errorf("expiry warning %v, want %v:\n%s", warned, tc.warned, r.stderr)
			}
			testenv.NoSecrets(t, sb.Secrets(), map[string]string{"stderr": r.stderr + r.errLine})
		})
	}

	// --out writes the same manifest to a 0600 file and nothing to stdout.
	out := filepath.Join(t.TempDir(), "secret.yaml")
	r := run(t, append(append([]string{}, base...), "--out", out)...)
	if fi, err := os.Stat(out); r.code != 0 || r.stdout != "" || err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("--out: exit %d %s, stdout %q, %v", r.code, r.errLine, r.stdout, err)
	}
	if _, auths := dockerAuths(t, readFile(t, out), false); auths[host]["password"] == "" {
		t.Errorf("--out file: %v", auths)
	}

	// Bad input: exit 2 before any call to AWS.
	sb.Log.Reset()
	for _, args := range [][]string{
		{"kube-secret", "--namespace", "Apps_1", "--name", "x", "--registry", host},
		{"kube-secret", "--namespace", "apps", "--name", "", "--registry", host},
		{"kube-secret", "--namespace", "apps", "--name", "x"},
		{"kube-secret", "--namespace", "apps", "--name", "x", "--registry", "ghcr.io"},
		{"kube-secret", "--namespace", "apps", "--name", "x", "--registry", host, "--registry-hosts", host + "=1234:us-east-1"},
	} {
		if r := run(t, args...); r.code != 2 {
			t.Errorf("%v: exit %d %s", args, r.code, r.errLine)
		}
	}
	if n := len(sb.Log.Entries()); n != 0 {
		t.Errorf("bad input made %d requests", n)
	}
}
