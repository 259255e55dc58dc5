package ecr

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecrpush/ecrpush/sandbox/world"
)

// awsCLI runs the aws CLI (botocore) against the sandbox; output is parsed JSON.
func awsCLI(t *testing.T, e *env, s *world.Session, args ...string) (map[string]any, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "aws", append(args, "--endpoint-url", e.api.URL, "--output", "json")...)
	dir := t.TempDir()
	cmd.Env = []string{
		"HOME=" + dir, "PATH=" + os.Getenv("PATH"),
		"AWS_ACCESS_KEY_ID=" + s.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + s.SecretAccessKey, "AWS_SESSION_TOKEN=" + s.SessionToken,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=" + dir + "/none", "AWS_SHARED_CREDENTIALS_FILE=" + dir + "/none",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1",
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var m map[string]any
	if err == nil && len(out) > 0 {
		if jerr := json.Unmarshal(out, &m); jerr != nil {
			return nil, string(out), fmt.Errorf("output is not JSON: %w", jerr)
		}
	}
	return m, stderr.String(), err
}

// TestAWSCLI checks that responses deserialize in botocore (aws CLI v1), timestamps included.
func TestAWSCLI(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("spawns the aws CLI")
	}
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("aws CLI not installed")
	}
	e := newEnv(t, envOptions{})
	s := e.session(ciAccount, "pusher")
	if _, _, err := awsCLI(t, e, s, "ecr", "create-repository", "--repository-name", "cli/app", "--image-tag-mutability", "IMMUTABLE"); err != nil {
		t.Fatalf("create-repository: %v", err)
	}
	img, _ := random.Image(256, 1)
	if err := remote.Write(e.ref(ciEast, "cli/app:v1"), img, basic(e.password(s, "us-east-1"))); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args  []string
		check func(m map[string]any) bool
		fail  string // expected error code in stderr
	}{
		{args: []string{"ecr", "get-authorization-token"}, check: func(m map[string]any) bool {
			ad := m["authorizationData"].([]any)[0].(map[string]any)
			return ad["proxyEndpoint"] == e.regs[ciEast].URL && ad["expiresAt"] != nil
		}},
		{args: []string{"ecr", "describe-repositories"}, check: func(m map[string]any) bool {
			r := m["repositories"].([]any)[0].(map[string]any)
			return r["repositoryName"] == "cli/app" && r["createdAt"] != nil && r["imageTagMutability"] == "IMMUTABLE"
		}},
		{args: []string{"ecr", "describe-images", "--repository-name", "cli/app"}, check: func(m map[string]any) bool {
			d := m["imageDetails"].([]any)[0].(map[string]any)
			return d["imagePushedAt"] != nil && d["imageTags"].([]any)[0] == "v1"
		}},
		{args: []string{"ecr", "batch-get-image", "--repository-name", "cli/app", "--image-ids", "imageTag=v1"}, check: func(m map[string]any) bool {
			return len(m["images"].([]any)) == 1
		}},
		{args: []string{"ecr", "describe-registry"}, check: func(m map[string]any) bool { return m["registryId"] == ciAccount }},
		{args: []string{"ecr", "describe-image-replication-status", "--repository-name", "cli/app", "--image-id", "imageTag=v1"}, check: func(m map[string]any) bool {
			return m["replicationStatuses"] != nil
		}},
		{args: []string{"ecr", "describe-repositories", "--repository-names", "missing"}, fail: "RepositoryNotFoundException"},
		{args: []string{"ecr", "get-registry-policy"}, fail: "RegistryPolicyNotFoundException"},
	}
	var wg sync.WaitGroup
	for _, tt := range cases {
		wg.Add(1)
		go func() { // the CLI takes ~a second to start; run them side by side
			defer wg.Done()
			m, stderr, err := awsCLI(t, e, s, tt.args...)
			switch {
			case tt.fail != "" && (err == nil || !strings.Contains(stderr, tt.fail)):
				t.Errorf("aws %v: want %s, got err=%v stderr=%s", tt.args, tt.fail, err, stderr)
			case tt.fail == "" && err != nil:
				t.Errorf("aws %v: %v: %s", tt.args, err, stderr)
			case tt.fail == "" && !safeCheck(tt.check, m):
				t.Errorf("aws %v: unexpected output %v", tt.args, m)
			}
		}()
	}
	wg.Wait()
}

// safeCheck runs a shape check, treating a failed type assertion as a mismatch.
func safeCheck(check func(map[string]any) bool, m map[string]any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return check(m)
}
