package ship_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"sigs.k8s.io/yaml"

	"github.com/ecrpush/ecrpush/internal/credhelper"
	"github.com/ecrpush/ecrpush/internal/ecr"
)

// readmeProxyLifetime is the proxy.exec lifetime of the README's pull-through cache recipe.
func readmeProxyLifetime(t *testing.T) time.Duration {
	t.Helper()
	for _, block := range fencedBlocks(readFile(t, filepath.Join(root, "README.md")), "yaml") {
		var cfg struct {
			Proxy struct {
				RemoteURL string `json:"remoteurl"`
				Exec      struct {
					Command  string `json:"command"`
					Lifetime string `json:"lifetime"`
				} `json:"exec"`
			} `json:"proxy"`
		}
		if yaml.Unmarshal([]byte(block), &cfg) != nil || cfg.Proxy.Exec.Command == "" {
			continue
		}
		if cfg.Proxy.Exec.Command != "docker-credential-ecrpush" {
			t.Errorf("proxy.exec.command is %q, want docker-credential-ecrpush", cfg.Proxy.Exec.Command)
		}
		d, err := time.ParseDuration(cfg.Proxy.Exec.Lifetime)
		if err != nil {
			t.Fatalf("proxy.exec.lifetime %q: %v", cfg.Proxy.Exec.Lifetime, err)
		}
		return d
	}
	t.Fatal("README: no distribution config with proxy.exec")
	return 0
}

// proxyServesExpired plays distribution's proxy.exec against the real credential helper (cache on disk,
// the helper's refresh rule, CapToCredentials) on a virtual clock over two days: the registry runs `get`
// and keeps the answer for lifetime, while other clients (docker on the same host) run `get` every 7
// minutes. A token really dies at the earlier of ECR's 12 hours and the end of the role session it was
// fetched with. It returns how many minutes the registry held a dead token.
func proxyServesExpired(t *testing.T, lifetime, session time.Duration, capped bool) int {
	t.Helper()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	death := map[string]time.Time{}
	n := 0
	h := &credhelper.Helper{
		Cache: &credhelper.Cache{Dir: filepath.Join(t.TempDir(), "cache")},
		Key:   func(r ecr.Registry) string { return "role|" + r.Region },
		Now:   func() time.Time { return now },
		Fetch: func(ctx context.Context, r ecr.Registry) (*ecr.Token, error) {
			n++
			pw := fmt.Sprintf("token-%d", n)
			reported := now.Add(12 * time.Hour)
			sessionEnd := now.Add(session)
			death[pw] = reported
			if sessionEnd.Before(reported) {
				death[pw] = sessionEnd
			}
			exp := reported
			if capped {
				creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{CanExpire: true, Expires: sessionEnd}, nil
				})
				exp = credhelper.CapToCredentials(ctx, creds, reported)
			}
			return &ecr.Token{Username: "AWS", Password: pw, ExpiresAt: exp}, nil
		},
	}
	host := "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	get := func() string {
		_, pw, err := h.Get(host)
		if err != nil {
			t.Fatal(err)
		}
		return pw
	}
	held, heldSince := get(), now
	dead := 0
	for minute := 0; minute < 48*60; minute++ {
		now = now.Add(time.Minute)
		if minute%7 == 3 {
			get() // another client on the host
		}
		if now.Sub(heldSince) >= lifetime {
			held, heldSince = get(), now
		}
		if !now.Before(death[held]) {
			dead++
		}
	}
	return dead
}

// TestProxyRecipeServesNoExpiredToken checks the README's pull-through cache recipe at scaled time: with its
// lifetime, the registry never holds a dead token, with the default 1-hour session or a 12-hour one. The old
// recipe (lifetime 1h) and a helper without the session cap both fail the same check.
func TestProxyRecipeServesNoExpiredToken(t *testing.T) {
	lifetime := readmeProxyLifetime(t)
	for _, session := range []time.Duration{time.Hour, 12 * time.Hour} {
		if dead := proxyServesExpired(t, lifetime, session, true); dead != 0 {
			t.Errorf("lifetime %s with %s sessions: the registry held a dead token for %d minutes", lifetime, session, dead)
		}
	}
	if dead := proxyServesExpired(t, time.Hour, time.Hour, true); dead == 0 {
		t.Error("control: lifetime 1h with 1h sessions should hold dead tokens; the simulation cannot tell")
	}
	if dead := proxyServesExpired(t, lifetime, time.Hour, false); dead == 0 {
		t.Error("control: without the cap to the session, 12h-reported tokens should die under the registry")
	}
}

// helperBinary is the ecrpush binary under the name docker looks for.
func helperBinary(t *testing.T) string {
	t.Helper()
	link := filepath.Join(t.TempDir(), "docker-credential-ecrpush")
	if err := os.Symlink(binary, link); err != nil {
		t.Fatal(err)
	}
	return link
}

func runHelper(t *testing.T, env map[string]string, stdin string, args ...string) (result, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helperBinary(t), args...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r, took
}

// TestHelperQuietForOtherHosts: for a host it does not serve the helper answers on stdout, as the protocol
// says, and says nothing on stderr (a registry or crane would log it for every pull).
func TestHelperQuietForOtherHosts(t *testing.T) {
	env := map[string]string{"HOME": t.TempDir()}
	for _, host := range []string{"https://index.docker.io/v1/", "ghcr.io", "127.0.0.1:5000"} {
		r, _ := runHelper(t, env, host, "get")
		if r.code != 1 || r.stdout != "credentials not found in native keychain\n" || r.stderr != "" {
			t.Errorf("get %s: exit %d, stdout %q, stderr %q; want exit 1, the protocol's answer, and silence on stderr", host, r.code, r.stdout, r.stderr)
		}
	}
}

// TestHelperGetFailsFastWhenSTSIsUnreachable: a registry waits for its credential helper; with STS silent
// (connections accepted, never answered) and nothing cached, `get` fails within 5 seconds.
func TestHelperGetFailsFastWhenSTSIsUnreachable(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"), 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	env := map[string]string{
		"HOME":                        home,
		"ECRPUSH_ROLE_ARN":            "arn:aws:iam::111122223333:role/ecr-pull",
		"ECRPUSH_IDENTITY":            "file",
		"AWS_WEB_IDENTITY_TOKEN_FILE": token,
		"AWS_REGION":                  "us-east-1",
		"AWS_ENDPOINT_URL_STS":        "http://" + silent.Addr().String(),
		"AWS_ENDPOINT_URL_ECR":        "http://" + silent.Addr().String(),
		"AWS_CONFIG_FILE":             filepath.Join(home, "none"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
	r, took := runHelper(t, env, "111122223333.dkr.ecr.us-east-1.amazonaws.com", "get")
	t.Logf("get took %s: %s", took.Round(10*time.Millisecond), strings.TrimSpace(r.stdout))
	if r.code == 0 || !strings.Contains(r.stdout, "did not answer") {
		t.Errorf("exit %d, stdout %q: want a failure saying STS did not answer", r.code, r.stdout)
	}
	if took >= 5*time.Second {
		t.Errorf("get took %s with STS silent: a registry holding its lock waits that long; want under 5 s", took)
	}
}
