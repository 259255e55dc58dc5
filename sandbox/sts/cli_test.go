package sts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// awsCLI runs the aws CLI (v1, botocore) against the sandbox with an isolated configuration.
// It proves botocore parses the XML STS sends. Missing CLI: skip locally, fail in CI.
func awsCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin, lerr := exec.LookPath("aws")
	if lerr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("aws CLI not found (required in CI): %v", lerr)
		}
		t.Skipf("aws CLI not found: %v", lerr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_MAX_ATTEMPTS=1",
		"AWS_PAGER=",
	}, env...)
	// pyenv shims need their root to find the interpreter.
	if root := os.Getenv("PYENV_ROOT"); root != "" {
		cmd.Env = append(cmd.Env, "PYENV_ROOT="+root)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func TestAWSCLIParsesResponses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	stdout, stderr, err := awsCLI(t, nil, "sts", "assume-role-with-web-identity", "--endpoint-url", e.server.URL,
		"--no-sign-request", "--output", "json", "--role-arn", ciRoleARN, "--role-session-name", "cli",
		"--web-identity-token", e.ghToken(nil), "--duration-seconds", "900")
	if err != nil {
		t.Fatalf("aws sts assume-role-with-web-identity: %v\n%s", err, stderr)
	}
	var out struct {
		Credentials struct {
			AccessKeyID     string `json:"AccessKeyId"`
			SecretAccessKey string
			SessionToken    string
			Expiration      string
		}
		SubjectFromWebIdentityToken string
		AssumedRoleUser             struct{ Arn, AssumedRoleId string }
		Provider, Audience          string
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("CLI output: %v\n%s", err, stdout)
	}
	if !strings.HasPrefix(out.Credentials.AccessKeyID, "ASIA") || out.Credentials.Expiration == "" ||
		out.SubjectFromWebIdentityToken != ghSubject || out.Audience != "sts.amazonaws.com" ||
		out.AssumedRoleUser.Arn != "arn:aws:sts::111122223333:assumed-role/gha-push/cli" ||
		out.Provider != "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com" {
		t.Errorf("CLI parsed %+v", out)
	}

	creds := []string{"AWS_ACCESS_KEY_ID=" + out.Credentials.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + out.Credentials.SecretAccessKey, "AWS_SESSION_TOKEN=" + out.Credentials.SessionToken}
	stdout, stderr, err = awsCLI(t, creds, "sts", "get-caller-identity", "--endpoint-url", e.server.URL, "--output", "json")
	if err != nil {
		t.Fatalf("aws sts get-caller-identity: %v\n%s", err, stderr)
	}
	var who struct{ UserId, Account, Arn string }
	if err := json.Unmarshal([]byte(stdout), &who); err != nil || who.Account != ciAccount || who.Arn != out.AssumedRoleUser.Arn {
		t.Errorf("get-caller-identity: %+v %v\n%s", who, err, stdout)
	}

	// Errors come through botocore with code and message.
	_, stderr, err = awsCLI(t, nil, "sts", "assume-role-with-web-identity", "--endpoint-url", e.server.URL,
		"--no-sign-request", "--role-arn", ciRoleARN, "--role-session-name", "cli",
		"--web-identity-token", e.ghToken(map[string]any{"aud": "elsewhere"}))
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("want a failing exit, got %v", err)
	}
	want := "An error occurred (InvalidIdentityToken) when calling the AssumeRoleWithWebIdentity operation: Incorrect token audience"
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}
