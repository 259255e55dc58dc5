package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// The GitHub runner runs a container action (`runs.using: docker`, and `uses: docker://…`) as
// actions/runner's ContainerActionHandler does (src/Runner.Worker/Handlers/ContainerActionHandler.cs):
//   - mounts the workspace at /github/workspace (the working directory), the runner's temp directory at
//     /github/runner_temp, its _temp/_github_home at /github/home (HOME), and the host's
//     /var/run/docker.sock; nothing else of the runner's file system;
//   - rewrites environment values that are one of those host paths, or start with one and a "/", to the
//     container path (ContainerInfo.TranslateToContainerPath); any other value, an input
//     "docker-archive:/home/runner/work/app/app/image.tar" included, arrives as written;
//   - sets RUNNER_WORKSPACE (runner.workspace, the parent of the default workspace), which is not under a
//     mapped path and so keeps the host's value.
const (
	containerWorkspace = "/github/workspace"
	containerTemp      = "/github/runner_temp"
	containerHome      = "/github/home"
)

// ContainerStep is a GitHub Actions container step seen from inside.
type ContainerStep struct {
	// HostWorkspaceParent is RUNNER_WORKSPACE on the runner, e.g. /home/runner/work/app; the workspace is
	// usually one directory below it (/home/runner/work/app/app), the temp directory beside it
	// (/home/runner/work/_temp).
	HostWorkspaceParent string
	getenv              func(string) string
}

// DetectContainerStep reports whether ecrpush runs as a GitHub container step: GITHUB_ACTIONS=true and
// the workspace at /github/workspace (a `run:` step on the runner has the host's path there).
func DetectContainerStep(getenv func(string) string) (ContainerStep, bool) {
	if getenv("GITHUB_ACTIONS") != "true" || getenv("GITHUB_WORKSPACE") != containerWorkspace {
		return ContainerStep{}, false
	}
	return ContainerStep{HostWorkspaceParent: strings.TrimSuffix(getenv("RUNNER_WORKSPACE"), "/"), getenv: getenv}, true
}

// ContainerPath maps a path on the runner to where the container sees it, when it is mounted.
func (c ContainerStep) ContainerPath(hostPath string) (string, bool) {
	p := path.Clean(hostPath)
	if c.HostWorkspaceParent == "" || !path.IsAbs(p) {
		return "", false
	}
	// RUNNER_WORKSPACE/<repository>/rest → /github/workspace/rest (the default workspace).
	if rest, ok := strings.CutPrefix(p, c.HostWorkspaceParent+"/"); ok {
		_, under, _ := strings.Cut(rest, "/")
		return path.Join(containerWorkspace, under), true
	}
	// The runner's temp directory sits beside the workspaces: <work>/_temp.
	if rest, ok := strings.CutPrefix(p, path.Dir(c.HostWorkspaceParent)+"/_temp"); ok && (rest == "" || strings.HasPrefix(rest, "/")) {
		return containerTemp + rest, true
	}
	return "", false
}

// explained is an error with the runner's explanation appended; it unwraps to the original, so exit codes
// (internal/fixable) and errors.As keep working.
type explained struct {
	err  error
	hint string
}

func (e *explained) Error() string { return strings.TrimRight(e.err.Error(), ". ") + "; " + e.hint }
func (e *explained) Unwrap() error { return e.err }

// ExplainSource adds what a workflow author needs to know to a failure to read the image source when
// ecrpush runs as a GitHub container step: a file path on the runner rather than in the container, a
// DOCKER_HOST the container cannot reach, a registry login the container cannot see. Anywhere else, or
// for other errors, err is returned as it is.
func ExplainSource(err error, source string, getenv func(string) string) error {
	if err == nil {
		return nil
	}
	c, ok := DetectContainerStep(getenv)
	if !ok {
		return err
	}
	transportName, ref, hasTransport := strings.Cut(source, ":")
	switch {
	case hasTransport && (transportName == "docker-archive" || transportName == "oci-archive" || transportName == "oci-layout" || transportName == "oci"):
		if hint := c.explainPath(transportName, ref); hint != "" {
			return &explained{err, hint}
		}
	case hasTransport && transportName == "docker-daemon":
		var op *net.OpError
		if errors.As(err, &op) {
			return &explained{err, c.explainDockerHost(getenv("DOCKER_HOST"))}
		}
	default:
		var te *transport.Error
		if errors.As(err, &te) && (te.StatusCode == 401 || te.StatusCode == 403) {
			if hint := c.explainDockerConfig(strings.TrimPrefix(source, "docker://")); hint != "" {
				return &explained{err, hint}
			}
		}
	}
	return err
}

// sourcePath is the file part of TRANSPORT:PATH[:TAG|@DIGEST]: up to the first ':' or '@' after the last
// '/'.
func sourcePath(ref string) string {
	last := strings.LastIndex(ref, "/")
	if i := strings.IndexAny(ref[last+1:], ":@"); i >= 0 {
		return ref[:last+1+i]
	}
	return ref
}

func (c ContainerStep) explainPath(transportName, ref string) string {
	p := sourcePath(ref)
	if !filepath.IsAbs(p) {
		return "" // relative to /github/workspace, the step's working directory: the error says what is missing
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if strings.HasPrefix(p, "/github/") {
		return ""
	}
	if inside, ok := c.ContainerPath(p); ok {
		if rel, ok := strings.CutPrefix(inside, containerWorkspace+"/"); ok {
			return fmt.Sprintf("%s is the runner's path: inside the Action's container the workspace is %s, so use a relative path: source: %s:%s",
				p, containerWorkspace, transportName, rel+strings.TrimPrefix(ref, p))
		}
		return fmt.Sprintf("%s is the runner's path: the Action's container sees it as %s (source: %s:%s)", p, inside, transportName, inside+strings.TrimPrefix(ref, p))
	}
	return fmt.Sprintf("the Action runs in a container that has only the workspace (%s, its working directory) and the runner's temp directory (%s) of the runner's files: write the image into the workspace and give a path relative to it",
		containerWorkspace, containerTemp)
}

func (c ContainerStep) explainDockerHost(dockerHost string) string {
	const saveHint = "or save the image in an earlier step (docker save -o image.tar IMAGE) and use source: docker-archive:image.tar"
	if dockerHost == "" || dockerHost == "unix:///var/run/docker.sock" {
		return "the runner mounts its /var/run/docker.sock into the Action's container, and no engine answers there (a rootless or remote engine, or container hooks): " + saveHint
	}
	u, err := url.Parse(dockerHost)
	if err != nil {
		return "DOCKER_HOST=" + dockerHost + " is not a URL the container can use: " + saveHint
	}
	switch u.Scheme {
	case "unix":
		return fmt.Sprintf("DOCKER_HOST=%s names a socket on the runner, which the Action's container does not have (only /var/run/docker.sock is mounted): set DOCKER_HOST: unix:///var/run/docker.sock in the step's env, %s", dockerHost, saveHint)
	case "tcp", "http", "https":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return fmt.Sprintf("DOCKER_HOST=%s: inside the Action's container %s is the container itself, not the runner: use an address the container reaches (the docker bridge gateway, docker network inspect bridge), %s", dockerHost, host, saveHint)
		}
		return fmt.Sprintf("DOCKER_HOST=%s is not reachable from the Action's container (it runs on the job's docker network): %s", dockerHost, saveHint)
	}
	return "DOCKER_HOST=" + dockerHost + " cannot be used from the Action's container: " + saveHint
}

// explainDockerConfig says why the container has no login for the source's registry, unless the docker
// config it can read has an entry for it (then the credentials themselves are wrong, which the error says).
func (c ContainerStep) explainDockerConfig(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ""
	}
	registry := r.Context().RegistryStr()
	dir := c.getenv("DOCKER_CONFIG")
	if dir == "" {
		dir = filepath.Join(firstNonEmpty(c.getenv("HOME"), containerHome), ".docker")
	}
	file := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(file)
	if err == nil && configHas(b, registry) {
		return ""
	}
	share := `before logging in (docker/login-action or docker login), run echo "DOCKER_CONFIG=$RUNNER_TEMP/docker-config" >> "$GITHUB_ENV", so that the login step and this step share a config the container sees (as /github/runner_temp/docker-config)`
	if c.getenv("DOCKER_CONFIG") == "" {
		return fmt.Sprintf("the runner's docker login (~/.docker/config.json of the runner's user) is not visible inside the Action's container, whose HOME is %s: %s; for Artifact Registry, give source-google-credentials instead", containerHome, share)
	}
	if err != nil {
		return fmt.Sprintf("DOCKER_CONFIG=%s has no config.json the Action's container can read (%v): the container sees only the workspace and the runner's temp directory, so point DOCKER_CONFIG into one of them (%s)", dir, err, share)
	}
	return fmt.Sprintf("the docker config %s has no login for %s: log in to %s in an earlier step with that DOCKER_CONFIG", file, registry, registry)
}

// configHas reports whether a docker config.json names registry in auths or credHelpers (or sets a
// credsStore, which may hold it).
func configHas(b []byte, registry string) bool {
	var cfg struct {
		Auths       map[string]json.RawMessage `json:"auths"`
		CredHelpers map[string]string          `json:"credHelpers"`
		CredsStore  string                     `json:"credsStore"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return false
	}
	if cfg.CredsStore != "" {
		return true
	}
	for _, keys := range []map[string]json.RawMessage{cfg.Auths} {
		for k := range keys {
			if hostOf(k) == registry || (registry == name.DefaultRegistry && strings.Contains(k, "index.docker.io")) {
				return true
			}
		}
	}
	for k := range cfg.CredHelpers {
		if hostOf(k) == registry {
			return true
		}
	}
	return false
}

func hostOf(s string) string {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Host
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
