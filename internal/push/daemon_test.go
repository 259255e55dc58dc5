package push

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// fakeEngine serves the two Engine API calls the daemon source makes, from a docker-save tar:
// GET /_ping and GET /v1.47/images/{name}/get (404 for any other name).
func fakeEngine(t testing.TB, saveTar, imageName string, calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch {
		case r.URL.Path == "/_ping":
			w.Header().Set("API-Version", "1.47")
			_, _ = w.Write([]byte("OK"))
		case r.Method == http.MethodGet && r.URL.Path == "/v1.47/images/"+imageName+"/get":
			w.Header().Set("Content-Type", "application/x-tar")
			http.ServeFile(w, r, saveTar)
		case strings.HasPrefix(r.URL.Path, "/v1.47/images/"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"No such image: ` + strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1.47/images/"), "/get") + `"}`))
		default:
			t.Errorf("unexpected Engine call %s %s", r.Method, r.URL)
			http.NotFound(w, r)
		}
	})
}

// unixServer serves h on a unix socket and returns its DOCKER_HOST.
func unixServer(t testing.TB, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + sock
}

func TestDaemonSource(t *testing.T) {
	t.Parallel()
	f := makeFixtures(t)
	var calls atomic.Int64
	engine := fakeEngine(t, f.save, "example.com/app:v1", &calls)
	unixHost := unixServer(t, engine)
	tcp := httptest.NewServer(engine)
	t.Cleanup(tcp.Close)
	want, err := load(t, "docker-archive:"+f.save)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{unixHost, "tcp://" + strings.TrimPrefix(tcp.URL, "http://")} {
		t.Run(host, func(t *testing.T) {
			spool := t.TempDir()
			src, err := ParseSource("docker-daemon:example.com/app:v1", WithDockerHost(host), WithSpoolDir(spool))
			if err != nil {
				t.Fatal(err)
			}
			a, err := src.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if a.Digest != want.Digest {
				t.Errorf("daemon image %s, archive image %s", a.Digest, want.Digest)
			}
			dst := testRegistry(t, nil) + "/app"
			if _, err := newPublisher(t, dst).Publish(context.Background(), a, []string{"v1"}); err != nil {
				t.Fatal(err)
			}
			if fetchDigest(t, dst+":v1") != a.Digest {
				t.Error("pushed digest differs")
			}
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(spool); len(left) != 0 {
				t.Errorf("spool not cleaned: %v", left)
			}
		})
	}

	for _, tc := range []struct{ ref, host, want string }{
		{"docker-daemon:example.com/app:v2", unixHost, "not in the Docker daemon"},
		{"docker-daemon:example.com/app:v1", "unix://" + filepath.Join(t.TempDir(), "none.sock"), "DOCKER_HOST"},
		{"docker-daemon:example.com/app:v1", "ssh://me@host", "not supported"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := load(t, tc.ref, WithDockerHost(tc.host))
			if !fixable.Is(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want fixable error with %q, got %v", tc.want, err)
			}
		})
	}
}

// An unreadable socket names DOCKER_HOST and permissions.
func TestDaemonSocketPermission(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root ignores socket permissions")
	}
	var calls atomic.Int64
	host := unixServer(t, fakeEngine(t, "", "x", &calls))
	if err := os.Chmod(strings.TrimPrefix(host, "unix://"), 0); err != nil {
		t.Fatal(err)
	}
	_, err := load(t, "docker-daemon:x", WithDockerHost(host))
	if !fixable.Is(err) || !strings.Contains(err.Error(), "docker group") {
		t.Errorf("got %v", err)
	}
}

func TestDaemonNameDefaultsToLatest(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"app":                   "app:latest",
		"app:1":                 "app:1",
		"localhost:5000/app":    "localhost:5000/app:latest",
		"localhost:5000/app:v2": "localhost:5000/app:v2",
		"0123456789ab":          "0123456789ab",
	} {
		s, err := newDaemonSource(in, &sourceOptions{})
		if err != nil || s.(*daemonSource).name != want {
			t.Errorf("%q → %v %v, want %q", in, s, err, want)
		}
	}
}
