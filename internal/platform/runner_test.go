package platform

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/push"
)

// runnerEnv is what a container step sees on a GitHub-hosted runner (ContainerActionHandler.cs): the
// translated workspace and home, and RUNNER_WORKSPACE untranslated.
func runnerEnv(extra map[string]string) func(string) string {
	env := map[string]string{
		"GITHUB_ACTIONS":   "true",
		"GITHUB_WORKSPACE": "/github/workspace",
		"HOME":             "/github/home",
		"RUNNER_TEMP":      "/github/runner_temp",
		"RUNNER_WORKSPACE": "/home/runner/work/app",
	}
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// sourceError is what ecrpush's source layer answers for ref: the error of ParseSource, else of Load.
func sourceError(t *testing.T, ref string, opts ...push.SourceOption) error {
	t.Helper()
	src, err := push.ParseSource(ref, opts...)
	if err != nil {
		return err
	}
	defer src.Close()
	_, err = src.Load(context.Background())
	if err == nil {
		t.Fatalf("%s loaded", ref)
	}
	return err
}

func TestExplainSourcePaths(t *testing.T) {
	for _, tc := range []struct {
		source, want string
	}{
		{"docker-archive:/home/runner/work/app/app/image.tar", "use a relative path: source: docker-archive:image.tar"},
		{"docker-archive:/home/runner/work/app/app/out/image.tar:app:v1", "source: docker-archive:out/image.tar:app:v1"},
		{"oci-layout:/home/runner/work/app/app/image@sha256:" + strings.Repeat("a", 64), "source: oci-layout:image@sha256:"},
		{"oci-archive:/home/runner/work/_temp/image.tar", "sees it as /github/runner_temp/image.tar"},
		{"docker-archive:/srv/ci/image.tar", "only the workspace (/github/workspace, its working directory)"},
	} {
		err := sourceError(t, tc.source)
		got := ExplainSource(err, tc.source, runnerEnv(nil))
		if !strings.Contains(got.Error(), tc.want) || !strings.HasPrefix(got.Error(), strings.TrimRight(err.Error(), ". ")) {
			t.Errorf("%s:\n%v\nwant the original error and %q", tc.source, got, tc.want)
		}
		if !fixable.Is(got) {
			t.Errorf("%s: the explanation lost the exit code 2", tc.source)
		}
		// On the runner itself (a run: step, or ecrpush outside GitHub) nothing is added.
		onHost := runnerEnv(map[string]string{"GITHUB_WORKSPACE": "/home/runner/work/app/app"})
		if got := ExplainSource(err, tc.source, onHost); got != err {
			t.Errorf("%s on the runner: %v", tc.source, got)
		}
	}
	// A relative path is the container's: the error already names what is missing.
	err := sourceError(t, "docker-archive:missing.tar")
	if got := ExplainSource(err, "docker-archive:missing.tar", runnerEnv(nil)); got != err {
		t.Errorf("relative path: %v", got)
	}
}

func TestExplainSourceDockerHost(t *testing.T) {
	// A listener that is closed at once: connection refused, as for a socket or port nobody serves.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	for _, tc := range []struct {
		host, want string
	}{
		{"tcp://" + addr, "inside the Action's container 127.0.0.1 is the container itself"},
		{"unix://" + sock, "names a socket on the runner, which the Action's container does not have"},
	} {
		err := sourceError(t, "docker-daemon:app:v1", push.WithDockerHost(tc.host))
		got := ExplainSource(err, "docker-daemon:app:v1", runnerEnv(map[string]string{"DOCKER_HOST": tc.host}))
		if !strings.Contains(got.Error(), tc.want) || !strings.Contains(got.Error(), "docker-archive:image.tar") {
			t.Errorf("DOCKER_HOST=%s: %v\nwant %q", tc.host, got, tc.want)
		}
	}
	err = sourceError(t, "docker-daemon:app:v1", push.WithDockerHost("unix://"+sock))
	if got := ExplainSource(err, "docker-daemon:app:v1", runnerEnv(nil)); !strings.Contains(got.Error(), "mounts its /var/run/docker.sock") {
		t.Errorf("default socket: %v", got)
	}
}

func TestExplainSourceRegistryLogin(t *testing.T) {
	// A registry that wants credentials it is never given.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := host + "/team/base:v1"
	err := sourceError(t, ref)
	var hinted error

	hinted = ExplainSource(err, ref, runnerEnv(nil))
	if !strings.Contains(hinted.Error(), "is not visible inside the Action's container, whose HOME is /github/home") ||
		!strings.Contains(hinted.Error(), `DOCKER_CONFIG=$RUNNER_TEMP/docker-config`) {
		t.Errorf("no DOCKER_CONFIG: %v", hinted)
	}
	dir := t.TempDir()
	hinted = ExplainSource(err, ref, runnerEnv(map[string]string{"DOCKER_CONFIG": dir}))
	if !strings.Contains(hinted.Error(), "has no config.json the Action's container can read") {
		t.Errorf("DOCKER_CONFIG without a config: %v", hinted)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"ghcr.io":{"auth":"eDp5"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	hinted = ExplainSource(err, ref, runnerEnv(map[string]string{"DOCKER_CONFIG": dir}))
	if !strings.Contains(hinted.Error(), "has no login for "+host) {
		t.Errorf("config for another registry: %v", hinted)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"http://`+host+`":{"auth":"eDp5"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := ExplainSource(err, ref, runnerEnv(map[string]string{"DOCKER_CONFIG": dir})); got != err {
		t.Errorf("a config with a login for the registry: the credentials are wrong, the error says so as it is: %v", got)
	}
	if other := errors.New("boom"); ExplainSource(other, ref, runnerEnv(nil)) != other {
		t.Error("an unrelated error was changed")
	}
}

func TestContainerPath(t *testing.T) {
	c, ok := DetectContainerStep(runnerEnv(nil))
	if !ok {
		t.Fatal("not detected")
	}
	for in, want := range map[string]string{
		"/home/runner/work/app/app":               "/github/workspace",
		"/home/runner/work/app/app/a/b.tar":       "/github/workspace/a/b.tar",
		"/home/runner/work/_temp":                 "/github/runner_temp",
		"/home/runner/work/_temp/x":               "/github/runner_temp/x",
		"/home/runner/work/_tempest/x":            "",
		"/home/runner/work/application/app/x":     "",
		"/home/runner/work/app/app/../../etc/pwd": "",
	} {
		got, _ := c.ContainerPath(in)
		if got != want {
			t.Errorf("ContainerPath(%s) = %q, want %q", in, got, want)
		}
	}
}
