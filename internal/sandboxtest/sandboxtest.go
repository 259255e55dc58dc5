package sandboxtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/sandbox"
)

// Start runs a sandbox (nil cfg: the default) until the test ends.
func Start(t testing.TB, cfg *sandbox.Config) *sandbox.Sandbox {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); sb.Close() })
	return sb
}

// machineEnv is what this machine may have set that would make a test depend on it.
var machineEnv = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
	"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "BUILDER_OUTPUT", "GITHUB_ACTIONS", "GCE_METADATA_HOST",
	"ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"}

// Export points the process environment at sb for the rest of the test, as `eval $(ecrpush sandbox)` would,
// with nothing inherited from the machine's AWS configuration. (The AWS SDK reads endpoints from the
// process environment, so tests using it cannot run in parallel.)
func Export(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	for _, k := range machineEnv {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	for _, kv := range sb.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// StartExported is Start followed by Export.
func StartExported(t *testing.T, cfg *sandbox.Config) *sandbox.Sandbox {
	t.Helper()
	sb := Start(t, cfg)
	Export(t, sb)
	return sb
}
