// Command limit is the benchmark's bare-protocol client: the least work any client can do to put an
// OCI layout's image into registries that are known to be empty. Per blob and destination it sends
// one POST (open an upload) and one monolithic PUT (the whole blob, with its digest), every blob of
// every destination at once, then the manifest and its tag. No existence checks, no retries, no
// compression, no read-back: what it takes is the registry's (and the link's) share of a push, the
// floor that ecrpush is measured against (P1, P2b in bench/RESULTS.md).
//
//	limit --layout DIR --dest 127.0.0.1:5000/repo:tag [--dest …]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type manifest struct {
	MediaType string       `json:"mediaType"`
	Config    descriptor   `json:"config"`
	Layers    []descriptor `json:"layers"`
	Manifests []descriptor `json:"manifests"`
}

func main() {
	var dests listFlag
	dir := flag.String("layout", "", "OCI image layout holding exactly one image")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Var(&dests, "dest", "HOST:PORT/REPO:TAG (repeatable)")
	flag.Parse()
	if *dir == "" || len(dests) == 0 {
		fmt.Fprintln(os.Stderr, "usage: limit --layout DIR --dest HOST:PORT/REPO:TAG [--dest …]")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *dir, dests); err != nil {
		fmt.Fprintln(os.Stderr, "limit:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string, dests []string) error {
	var idx manifest
	if err := readJSON(filepath.Join(dir, "index.json"), &idx); err != nil {
		return err
	}
	if len(idx.Manifests) != 1 {
		return fmt.Errorf("%s: index.json lists %d manifests, want 1", dir, len(idx.Manifests))
	}
	top := idx.Manifests[0]
	raw, err := os.ReadFile(blobPath(dir, top.Digest))
	if err != nil {
		return err
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	blobs := append([]descriptor{m.Config}, m.Layers...)

	// One connection per concurrent upload, kept for the manifest PUT.
	client := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: len(blobs) * 2,
		DisableCompression:  true,
	}}
	type target struct{ host, repo, tag string }
	var targets []target
	for _, d := range dests {
		host, rest, ok := strings.Cut(d, "/")
		i := strings.LastIndex(rest, ":")
		if !ok || i < 1 {
			return fmt.Errorf("--dest %q is not HOST/REPO:TAG", d)
		}
		targets = append(targets, target{host, rest[:i], rest[i+1:]})
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, t := range targets {
		for _, b := range blobs {
			g.Go(func() error { return upload(gctx, client, dir, t.host, t.repo, b) })
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	g, gctx = errgroup.WithContext(ctx)
	for _, t := range targets {
		g.Go(func() error {
			u := fmt.Sprintf("http://%s/v2/%s/manifests/%s", t.host, t.repo, t.tag)
			req, err := http.NewRequestWithContext(gctx, http.MethodPut, u, strings.NewReader(string(raw)))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", top.MediaType)
			return do(client, req, http.StatusCreated)
		})
	}
	return g.Wait()
}

// upload is POST /blobs/uploads/ then one PUT of the whole blob to the Location it answers.
func upload(ctx context.Context, client *http.Client, dir, host, repo string, b descriptor) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://%s/v2/%s/blobs/uploads/", host, repo), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST upload in %s/%s: %s", host, repo, resp.Status)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", b.Digest)
	loc.RawQuery = q.Encode()
	f, err := os.Open(blobPath(dir, b.Digest))
	if err != nil {
		return err
	}
	defer f.Close()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), f)
	if err != nil {
		return err
	}
	req.ContentLength = b.Size
	req.Header.Set("Content-Type", "application/octet-stream")
	return do(client, req, http.StatusCreated)
}

func do(client *http.Client, req *http.Request, want int) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", req.Method, redact(req.URL), resp.Status, body)
	}
	return nil
}

func redact(u *url.URL) string { return u.Scheme + "://" + u.Host + u.Path }

func blobPath(dir, digest string) string {
	alg, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(dir, "blobs", alg, hex)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
