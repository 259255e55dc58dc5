package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// registry is one docker-registry process (Debian's distribution) on 127.0.0.1 with its own
// storage directory and no authentication, optionally behind a slowLink.
type registry struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	logs *bytes.Buffer
	link *slowLink
}

// host is what clients are pointed at: the slow link when there is one.
func (r *registry) host() string {
	if r.link != nil {
		return r.link.addr()
	}
	return r.addr
}

// live tracks every started registry so a signal can stop them all.
var live = struct {
	sync.Mutex
	m map[*registry]bool
}{m: map[*registry]bool{}}

func stopAll() {
	live.Lock()
	rs := live.m
	live.m = map[*registry]bool{}
	live.Unlock()
	for r := range rs {
		r.stop()
	}
}

// startRegistry starts docker-registry on a free port with storage in dir (which it may already
// hold: a seeded copy). It retries when another process took the port between probe and bind.
func startRegistry(ctx context.Context, bin, dir string, rtt time.Duration) (*registry, error) {
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		r, err := tryStart(ctx, bin, dir)
		if err == nil {
			if rtt > 0 {
				if r.link, err = newSlowLink(r.addr, rtt); err != nil {
					r.stop()
					return nil, err
				}
			}
			live.Lock()
			live.m[r] = true
			live.Unlock()
			return r, nil
		}
		last = err
	}
	return nil, last
}

// accessLog makes registries log every request to stderr (-serve).
var accessLog bool

func tryStart(ctx context.Context, bin, dir string) (*registry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	level := "error"
	if accessLog {
		level = "info"
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: %s
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: ecrpush-bench
`, level, filepath.Join(dir, "data"), addr)
	conf := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	r := &registry{addr: addr, dir: dir, done: make(chan struct{}), logs: &bytes.Buffer{}}
	r.cmd = exec.Command(bin, "serve", conf)
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if accessLog {
		r.cmd.Stdout, r.cmd.Stderr = os.Stderr, os.Stderr
	}
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("docker-registry exited: %s", r.logs.String())
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.stop()
			return nil, fmt.Errorf("docker-registry did not answer on %s: %s", addr, r.logs.String())
		}
	}
}

// stop kills the registry (its storage is thrown away, so there is nothing to flush) and its link.
func (r *registry) stop() {
	live.Lock()
	delete(live.m, r)
	live.Unlock()
	if r.link != nil {
		r.link.close()
	}
	if r.cmd.Process != nil {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	}
}

var manifestAccept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"

// check asks the registry itself (not through the link) for repo:tag and every blob it names: a
// tool that exited 0 must have left a complete image. It returns the bytes of the config and
// layers the manifest names (what every pull of the image fetches).
func (r *registry) check(ctx context.Context, repo, tag string) (int64, error) {
	get := func(method, path string, accept string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, "http://"+r.addr+"/v2/"+repo+path, nil)
		if err != nil {
			return nil, err
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		return http.DefaultClient.Do(req)
	}
	resp, err := get(http.MethodGet, "/manifests/"+tag, manifestAccept)
	if err != nil {
		return 0, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s/%s:%s: %s", r.addr, repo, tag, resp.Status)
	}
	type desc struct {
		Digest string
		Size   int64
	}
	var m struct {
		Config desc
		Layers []desc
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return 0, err
	}
	if m.Config.Digest == "" {
		return 0, errors.New("manifest without config")
	}
	var total int64
	for _, d := range append([]desc{m.Config}, m.Layers...) {
		resp, err := get(http.MethodHead, "/blobs/"+d.Digest, "")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s/%s: blob %s: %s", r.addr, repo, d.Digest, resp.Status)
		}
		total += d.Size
	}
	return total, nil
}
