package push

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// defaultDockerHost is where the Engine listens when DOCKER_HOST is unset.
const defaultDockerHost = "unix:///var/run/docker.sock"

// daemonSource is docker-daemon:NAME[:TAG]. It needs one Engine API call, GET /images/{name}/get
// (what `docker save` uses), so it speaks HTTP over the socket itself rather than pull in the
// Docker client module. The export is spooled to disk once and read as a docker archive: the
// image is never held in memory (go-containerregistry's daemon package buffers it; issue #1835).
type daemonSource struct {
	name  string
	o     *sourceOptions
	cache cached
	spooled
}

func newDaemonSource(s string, o *sourceOptions) (Source, error) {
	if s == "" || strings.ContainsAny(s, " \t\n") {
		return nil, fixable.New("docker-daemon: needs an image name, e.g. docker-daemon:myapp:1.0")
	}
	// Without a tag the Engine exports every tag of the repository; docker save NAME means NAME:latest.
	if !strings.HasPrefix(s, "sha256:") && !isHexID(s) {
		last := s[strings.LastIndex(s, "/")+1:]
		if !strings.Contains(last, ":") && !strings.Contains(last, "@") {
			s += ":latest"
		}
	}
	return &daemonSource{name: s, o: o}, nil
}

func isHexID(s string) bool {
	if len(s) < 12 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

func (s *daemonSource) String() string { return "docker-daemon:" + s.name }

func (s *daemonSource) Load(ctx context.Context) (*Artifact, error) {
	return s.cache.get(func() (*Artifact, error) {
		client, base, err := dockerClient(s.o.dockerHost)
		if err != nil {
			return nil, err
		}
		defer client.CloseIdleConnections()
		host := s.o.dockerHost
		if host == "" {
			host = defaultDockerHost
		}
		version, err := pingDocker(ctx, client, base, host)
		if err != nil {
			return nil, err
		}
		dir, err := s.spool(s.o, "docker")
		if err != nil {
			return nil, err
		}
		file := filepath.Join(dir, "export.tar")
		if err := s.export(ctx, client, base, version, file); err != nil {
			return nil, err
		}
		return loadDockerArchive(ctx, s.String(), file, "", dir, s.o)
	})
}

// export streams GET /images/{name}/get into file.
func (s *daemonSource) export(ctx context.Context, client *http.Client, base, version, file string) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	if version != "" {
		u.Path = "/v" + version
	}
	u.Path += "/images/" + s.name + "/get"
	// API 1.48 added platform selection to the export; older daemons hold one platform anyway.
	if p := s.o.platform; p != nil && apiAtLeast(version, 1, 48) {
		b, _ := json.Marshal(map[string]string{"os": p.OS, "architecture": p.Architecture, "variant": p.Variant})
		u.RawQuery = url.Values{"platform": {string(b)}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: export: %w", s, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg := engineMessage(resp)
		if resp.StatusCode == http.StatusNotFound {
			return fixable.New("image %s is not in the Docker daemon (%s): build or pull it first (docker images lists what is there)", s.name, msg)
		}
		return fmt.Errorf("%s: export answered %s: %s", s, resp.Status, msg)
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return fixable.Wrap(err, fmt.Sprintf("cannot write to the spool directory (%v): give it a writable place with room for the image", err))
	}
	n, err := io.Copy(f, &ctxReader{ctx: ctx, r: resp.Body})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: export after %d bytes: %w", s, n, err)
	}
	s.o.log.Debug("docker export spooled", "image", s.name, "bytes", n)
	return nil
}

// pingDocker checks the daemon answers and returns its API version ("" if it does not say).
func pingDocker(ctx context.Context, client *http.Client, base, host string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_ping", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		hint := "start Docker, point DOCKER_HOST at a running daemon, or check that your user may use the socket (permissions: the docker group)"
		if errors.Is(err, os.ErrPermission) {
			hint = "your user may not use the socket: add it to the docker group, or set DOCKER_HOST to a socket you can use"
		}
		return "", fixable.Wrap(err, fmt.Sprintf("cannot reach the Docker daemon at %s (DOCKER_HOST) (%v): %s", host, err, hint))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("docker daemon at %s answered /_ping with %s", host, resp.Status)
	}
	v := resp.Header.Get("API-Version")
	if _, _, ok := parseAPIVersion(v); !ok {
		v = ""
	}
	return v, nil
}

func parseAPIVersion(v string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(v, ".")
	if !found {
		return 0, 0, false
	}
	ma, err1 := strconv.Atoi(a)
	mi, err2 := strconv.Atoi(b)
	return ma, mi, err1 == nil && err2 == nil
}

func apiAtLeast(v string, major, minor int) bool {
	ma, mi, ok := parseAPIVersion(v)
	return ok && (ma > major || (ma == major && mi >= minor))
}

func engineMessage(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return e.Message
	}
	return strings.TrimSpace(string(b))
}

// dockerClient builds an HTTP client for DOCKER_HOST (unix://, tcp://, http(s)://). tcp:// uses TLS
// when DOCKER_TLS_VERIFY is set, with DOCKER_CERT_PATH's ca.pem, cert.pem and key.pem, as docker does.
func dockerClient(host string) (*http.Client, string, error) {
	if host == "" {
		host = defaultDockerHost
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme == "" {
		return nil, "", fixable.New("DOCKER_HOST=%q is not a URL: use unix:///var/run/docker.sock or tcp://HOST:PORT", host)
	}
	tr := &http.Transport{
		DisableCompression:    true,
		ResponseHeaderTimeout: 5 * time.Minute, // the Engine may assemble a large export before answering
		IdleConnTimeout:       30 * time.Second,
	}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if sock == "" {
			sock = u.Host
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		return &http.Client{Transport: tr}, "http://docker", nil
	case "tcp", "http", "https":
		scheme := "http"
		if u.Scheme == "https" || (u.Scheme == "tcp" && os.Getenv("DOCKER_TLS_VERIFY") != "") {
			scheme = "https"
			cfg, err := dockerTLS(os.Getenv("DOCKER_CERT_PATH"))
			if err != nil {
				return nil, "", err
			}
			tr.TLSClientConfig = cfg
		}
		return &http.Client{Transport: tr}, scheme + "://" + u.Host, nil
	default:
		return nil, "", fixable.New("DOCKER_HOST=%q: the %s:// scheme is not supported; use unix:// or tcp:// (for ssh, forward the socket: ssh -L)", host, u.Scheme)
	}
}

func dockerTLS(dir string) (*tls.Config, error) {
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".docker")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca, err := os.ReadFile(filepath.Join(dir, "ca.pem")); err == nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fixable.New("%s has no PEM certificate: fix DOCKER_CERT_PATH", filepath.Join(dir, "ca.pem"))
		}
		cfg.RootCAs = pool
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err == nil {
		cfg.Certificates = []tls.Certificate{cert}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fixable.Wrap(err, fmt.Sprintf("DOCKER_CERT_PATH %s: client certificate unusable (%v)", dir, err))
	}
	return cfg, nil
}
