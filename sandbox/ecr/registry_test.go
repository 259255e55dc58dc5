package ecr

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestRegistryBaseAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sess := e.session(ciAccount, "pusher")
	good := e.directPassword(sess, "us-east-1")
	tests := []struct {
		name   string
		id     RegistryID
		pass   string
		status int
	}{
		{"no credentials", ciEast, "", http.StatusUnauthorized},
		{"unknown password", ciEast, "not-a-token", http.StatusUnauthorized},
		{"valid", ciEast, good, http.StatusOK},
		{"token from another region", ciWest, good, http.StatusUnauthorized},
		{"another account's registry still answers the probe", prodEast, good, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.rawRequest(tt.id, http.MethodGet, "/v2/", tt.pass, "", nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == http.StatusUnauthorized {
				ch := resp.Header.Get("WWW-Authenticate")
				if !strings.HasPrefix(ch, "Basic realm=") || !strings.Contains(ch, `service="ecr.amazonaws.com"`) {
					t.Fatalf("challenge %q", ch)
				}
			}
		})
	}
}

func TestRegistryPushPull(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sess := e.session(ciAccount, "pusher")
	pass := e.directPassword(sess, "us-east-1")
	e.directRepo(ciEast, "team/app", "MUTABLE")
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref := e.ref(ciEast, "team/app:v1")
	if err := remote.Write(ref, img, basic(pass)); err != nil {
		t.Fatalf("push: %v", err)
	}
	want, _ := img.Digest()
	got, err := remote.Image(ref, basic(pass))
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if d, _ := got.Digest(); d != want {
		t.Fatalf("digest %s, want %s", d, want)
	}
	layers, _ := got.Layers()
	for _, l := range layers { // reads every blob back, verifying digests
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("layer read: %v", err)
		}
		rc.Close()
	}
	tags, err := remote.List(e.ref(ciEast, "team/app").Context(), basic(pass))
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Fatalf("tags %v %v", tags, err)
	}
	// Re-pushing the same image to a mutable tag is fine.
	if err := remote.Write(ref, img, basic(pass)); err != nil {
		t.Fatalf("re-push: %v", err)
	}
}

func TestRegistryErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sess := e.session(ciAccount, "pusher")
	pass := e.directPassword(sess, "us-east-1")
	denied := e.directPassword(e.session(ciAccount, "tokenonly"), "us-east-1")
	prodPass := e.directPassword(e.session(prodAccount, "pusher"), "us-east-1")
	e.directRepo(ciEast, "app", "MUTABLE")
	e.directRepo(prodEast, "app", "MUTABLE")
	img, _ := random.Image(512, 1)
	tests := []struct {
		name   string
		id     RegistryID
		ref    string
		pass   string
		status int
		code   string
	}{
		{"anonymous", ciEast, "app:v1", "", http.StatusUnauthorized, "DENIED"},
		{"missing repository", ciEast, "nope:v1", pass, http.StatusNotFound, "NAME_UNKNOWN"},
		{"identity policy denies", ciEast, "app:v1", denied, http.StatusForbidden, "DENIED"},
		{"another account's password", prodEast, "app:v1", pass, http.StatusForbidden, "DENIED"},
		{"own account works", prodEast, "app:v1", prodPass, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []remote.Option{}
			if tt.pass != "" {
				opts = append(opts, basic(tt.pass))
			}
			err := remote.Write(e.ref(tt.id, tt.ref), img, opts...)
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("push: %v", err)
				}
				return
			}
			// ggcr probes with HEAD (no body), so the code is only there for GET/PUT failures.
			status, code := regStatus(err)
			if status != tt.status || (code != "" && code != tt.code) {
				t.Fatalf("got %d %s (%v), want %d %s", status, code, err, tt.status, tt.code)
			}
		})
	}
}

func TestRegistryTokenExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sess := e.session(ciAccount, "pusher")
	pass := e.directPassword(sess, "us-east-1")
	e.directRepo(ciEast, "app", "MUTABLE")
	img, _ := random.Image(512, 1)
	if err := remote.Write(e.ref(ciEast, "app:v1"), img, basic(pass)); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(e.svc.o.TokenTTL + time.Second)
	err := remote.Write(e.ref(ciEast, "app:v2"), img, basic(pass))
	if status, _ := regStatus(err); status != http.StatusUnauthorized {
		t.Fatalf("push after expiry: %v", err)
	}
	resp := e.rawRequest(ciEast, http.MethodGet, "/v2/app/tags/list", pass, "", nil)
	var body struct {
		Errors []struct{ Code, Message string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusUnauthorized || len(body.Errors) != 1 || body.Errors[0].Code != "DENIED" ||
		body.Errors[0].Message != "Your authorization token has expired. Reauthenticate and try again." {
		t.Fatalf("got %d %+v", resp.StatusCode, body)
	}
}

func TestRegistryImmutableTags(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	pass := e.directPassword(e.session(ciAccount, "pusher"), "us-east-1")
	e.directRepo(ciEast, "frozen", "IMMUTABLE")
	a, _ := random.Image(512, 1)
	b, _ := random.Image(512, 1)
	ref := e.ref(ciEast, "frozen:v1")
	if err := remote.Write(ref, a, basic(pass)); err != nil {
		t.Fatal(err)
	}
	err := remote.Write(ref, b, basic(pass))
	status, code := regStatus(err)
	if status != http.StatusBadRequest || code != "TAG_INVALID" ||
		!strings.Contains(err.Error(), "The image tag 'v1' already exists in the 'frozen' repository and cannot be overwritten because the repository is immutable.") {
		t.Fatalf("other image: got %d %s: %v", status, code, err)
	}
	// ggcr skips the PUT when the tag already names the digest; ECR refuses the PUT itself.
	raw, _ := a.RawManifest()
	mt, _ := a.MediaType()
	resp := e.putRaw(ciEast, "frozen/manifests/v1", pass, string(mt), raw)
	if resp.StatusCode != http.StatusBadRequest || ociError(t, resp) != "TAG_INVALID" {
		t.Fatalf("same image: %d", resp.StatusCode)
	}
	// Pushing by digest is not a tag write.
	d, _ := b.Digest()
	if err := remote.Write(e.ref(ciEast, "frozen@"+d.String()), b, basic(pass)); err != nil {
		t.Fatalf("push by digest: %v", err)
	}
}

// putRaw PUTs a manifest body with a content type.
func (e *env) putRaw(id RegistryID, repoRef, pass, mediaType string, body []byte) *http.Response {
	return e.rawRequest(id, http.MethodPut, "/v2/"+repoRef, pass, string(body), map[string]string{"Content-Type": mediaType})
}

func ociError(t *testing.T, resp *http.Response) string {
	t.Helper()
	var body struct {
		Errors []struct{ Code, Message string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if len(body.Errors) == 0 {
		return ""
	}
	return body.Errors[0].Code
}

func TestRegistryManifestValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	pass := e.directPassword(e.session(ciAccount, "pusher"), "us-east-1")
	e.directRepo(ciEast, "app", "MUTABLE")
	e.directRepo(ciEast, "elsewhere", "MUTABLE")
	img, _ := random.Image(512, 2)
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	idx, _ := random.Index(256, 1, 2)
	rawIdx, _ := idx.RawManifest()
	idxMT, _ := idx.MediaType()

	resp := e.putRaw(ciEast, "app/manifests/v1", pass, string(mt), raw)
	if resp.StatusCode != http.StatusBadRequest || ociError(t, resp) != "MANIFEST_BLOB_UNKNOWN" {
		t.Fatalf("manifest without blobs: %d", resp.StatusCode)
	}
	resp = e.putRaw(ciEast, "app/manifests/v1", pass, string(idxMT), rawIdx)
	if resp.StatusCode != http.StatusBadRequest || ociError(t, resp) != "MANIFEST_UNKNOWN" {
		t.Fatalf("index without children: %d", resp.StatusCode)
	}
	resp = e.putRaw(ciEast, "app/manifests/v1", pass, string(mt), []byte("{not json"))
	if resp.StatusCode != http.StatusBadRequest || ociError(t, resp) != "MANIFEST_INVALID" {
		t.Fatalf("garbage: %d", resp.StatusCode)
	}
	resp = e.putRaw(ciEast, "app/manifests/v1", pass, "application/vnd.oci.image.index.v1+json", raw)
	if resp.StatusCode != http.StatusBadRequest || ociError(t, resp) != "MANIFEST_INVALID" {
		t.Fatalf("media type mismatch: %d", resp.StatusCode)
	}
	// Blobs pushed to another repository do not count: ECR layers are per repository.
	if err := remote.Write(e.ref(ciEast, "elsewhere:v1"), img, basic(pass)); err != nil {
		t.Fatal(err)
	}
	resp = e.putRaw(ciEast, "app/manifests/v1", pass, string(mt), raw)
	if resp.StatusCode != http.StatusBadRequest || ociError(t, resp) != "MANIFEST_BLOB_UNKNOWN" {
		t.Fatalf("blobs of another repository: %d", resp.StatusCode)
	}
	d, _ := img.Digest()
	resp = e.putRaw(ciEast, "elsewhere/manifests/sha256:"+strings.Repeat("0", 64), pass, string(mt), raw)
	if resp.StatusCode != http.StatusBadRequest || ociError(t, resp) != "DIGEST_INVALID" {
		t.Fatalf("digest mismatch: %d", resp.StatusCode)
	}
	resp = e.rawRequest(ciEast, http.MethodGet, "/v2/app/manifests/"+d.String(), pass, "", nil)
	if resp.StatusCode != http.StatusNotFound || ociError(t, resp) != "MANIFEST_UNKNOWN" {
		t.Fatalf("get missing: %d", resp.StatusCode)
	}
}

func TestRegistryIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	pass := e.directPassword(e.session(ciAccount, "pusher"), "us-east-1")
	e.directRepo(ciEast, "multi", "IMMUTABLE")
	idx, _ := random.Index(256, 1, 3)
	ref := e.ref(ciEast, "multi:v1")
	if err := remote.WriteIndex(ref, idx, basic(pass)); err != nil {
		t.Fatalf("push index: %v", err)
	}
	got, err := remote.Index(ref, basic(pass))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("digest %s want %s", d, want)
	}
	im, _ := got.IndexManifest()
	for _, m := range im.Manifests {
		if _, err := remote.Image(e.ref(ciEast, "multi@"+m.Digest.String()), basic(pass)); err != nil {
			t.Fatalf("child %s: %v", m.Digest, err)
		}
	}
	rg, _ := e.svc.registry(ciEast)
	rg.mu.RLock()
	idxImg := rg.repos["multi"].images[want.String()]
	rg.mu.RUnlock()
	if idxImg == nil || idxImg.size <= 0 || idxImg.mediaType != mtOCIIndex {
		t.Fatalf("index record %+v", idxImg)
	}
}

func blobDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// A chunked upload as ECR takes it: every PATCH answered 201 (not the spec's 202), parts of at
// least 5 MiB but the last, Content-Range checked.
func TestRegistryChunkedUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	pass := e.directPassword(e.session(ciAccount, "pusher"), "us-east-1")
	e.directRepo(ciEast, "app", "MUTABLE")
	e.directRepo(ciEast, "other", "MUTABLE")
	data := []byte(strings.Repeat("chunked-layer-", (minPartSize+7000)/14))
	digest := blobDigest(data)

	resp := e.rawRequest(ciEast, http.MethodPost, "/v2/app/blobs/uploads/", pass, "", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	half := minPartSize
	resp = e.rawRequest(ciEast, http.MethodPatch, loc, pass, string(data[:half]),
		map[string]string{"Content-Range": fmt.Sprintf("0-%d", half-1), "Content-Type": "application/octet-stream"})
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Range") != fmt.Sprintf("0-%d", half-1) {
		t.Fatalf("PATCH 1: %d %q", resp.StatusCode, resp.Header.Get("Range"))
	}
	resp = e.rawRequest(ciEast, http.MethodPatch, loc, pass, "xx", map[string]string{"Content-Range": "0-1"})
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("out-of-order PATCH: %d", resp.StatusCode)
	}
	resp = e.rawRequest(ciEast, http.MethodPatch, loc, pass, string(data[half:]),
		map[string]string{"Content-Range": fmt.Sprintf("%d-%d", half, len(data)-1)})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PATCH 2: %d", resp.StatusCode)
	}
	resp = e.rawRequest(ciEast, http.MethodPut, loc+"?digest="+digest, pass, "", nil)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != digest {
		t.Fatalf("PUT %d", resp.StatusCode)
	}
	resp = e.rawRequest(ciEast, http.MethodHead, "/v2/app/blobs/"+digest, pass, "", nil)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) {
		t.Fatalf("HEAD %d len %d", resp.StatusCode, resp.ContentLength)
	}
	resp = e.rawRequest(ciEast, http.MethodGet, "/v2/app/blobs/"+digest, pass, "", map[string]string{"Range": "bytes=0-9"})
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusPartialContent || string(b) != string(data[:10]) {
		t.Fatalf("range GET %d %q", resp.StatusCode, b)
	}
	resp = e.rawRequest(ciEast, http.MethodHead, "/v2/other/blobs/"+digest, pass, "", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("blob visible in another repository: %d", resp.StatusCode)
	}
	// A wrong digest is refused and the blob is not stored.
	resp = e.rawRequest(ciEast, http.MethodPost, "/v2/app/blobs/uploads/?digest=sha256:"+strings.Repeat("a", 64), pass, "hello", nil)
	if resp.StatusCode != http.StatusBadRequest || ociError(t, resp) != "DIGEST_INVALID" {
		t.Fatalf("monolithic bad digest: %d", resp.StatusCode)
	}
	resp = e.rawRequest(ciEast, http.MethodPatch, "/v2/app/blobs/uploads/no-such-upload", pass, "x", nil)
	if resp.StatusCode != http.StatusNotFound || ociError(t, resp) != "BLOB_UPLOAD_UNKNOWN" {
		t.Fatalf("unknown upload: %d", resp.StatusCode)
	}
	resp = e.rawRequest(ciEast, http.MethodPost, "/v2/missing/blobs/uploads/", pass, "", nil)
	if resp.StatusCode != http.StatusNotFound || ociError(t, resp) != "NAME_UNKNOWN" {
		t.Fatalf("upload to missing repo: %d", resp.StatusCode)
	}
}

// ECR's refusals that the distribution spec does not have: an upload without any part, a part
// under 5 MiB followed by another, a manifest without a top-level mediaType.
func TestRegistryECRRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	pass := e.directPassword(e.session(ciAccount, "pusher"), "us-east-1")
	e.directRepo(ciEast, "app", "MUTABLE")
	empty := blobDigest(nil)
	message := func(resp *http.Response) string {
		var body struct {
			Errors []struct{ Code, Message string }
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if len(body.Errors) != 1 {
			t.Fatalf("error body %+v", body)
		}
		return body.Errors[0].Code + ": " + body.Errors[0].Message
	}

	t.Run("empty upload", func(t *testing.T) {
		resp := e.rawRequest(ciEast, http.MethodPost, "/v2/app/blobs/uploads/", pass, "", nil)
		loc := resp.Header.Get("Location")
		resp = e.rawRequest(ciEast, http.MethodPut, loc+"?digest="+empty, pass, "", nil)
		if m := message(resp); resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(m, "BLOB_UPLOAD_INVALID") ||
			!strings.Contains(m, "cannot be completed because it does not have any parts") {
			t.Fatalf("PUT of an empty upload: %d %s", resp.StatusCode, m)
		}
		resp = e.rawRequest(ciEast, http.MethodPost, "/v2/app/blobs/uploads/?digest="+empty, pass, "", nil)
		if m := message(resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(m, "does not have any parts") {
			t.Fatalf("monolithic POST of nothing: %d %s", resp.StatusCode, m)
		}
		resp = e.rawRequest(ciEast, http.MethodHead, "/v2/app/blobs/"+empty, pass, "", nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("the empty blob was stored: %d", resp.StatusCode)
		}
	})
	t.Run("small part not last", func(t *testing.T) {
		resp := e.rawRequest(ciEast, http.MethodPost, "/v2/app/blobs/uploads/", pass, "", nil)
		loc := resp.Header.Get("Location")
		resp = e.rawRequest(ciEast, http.MethodPatch, loc, pass, "small", nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PATCH 1: %d", resp.StatusCode)
		}
		resp = e.rawRequest(ciEast, http.MethodPatch, loc, pass, "more", nil)
		if m := message(resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(m, "LayerPartTooSmallException") {
			t.Fatalf("PATCH after a small part: %d %s", resp.StatusCode, m)
		}
		resp = e.rawRequest(ciEast, http.MethodPut, loc+"?digest="+blobDigest([]byte("smallmore")), pass, "more", nil)
		if m := message(resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(m, "LayerPartTooSmallException") {
			t.Fatalf("PUT with a body after a small part: %d %s", resp.StatusCode, m)
		}
		// A small part that is the last one is fine.
		resp = e.rawRequest(ciEast, http.MethodPut, loc+"?digest="+blobDigest([]byte("small")), pass, "", nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT after one small part: %d", resp.StatusCode)
		}
	})
	t.Run("manifest without mediaType", func(t *testing.T) {
		cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		resp := e.rawRequest(ciEast, http.MethodPost, "/v2/app/blobs/uploads/?digest="+blobDigest(cfg), pass, string(cfg), nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("config: %d", resp.StatusCode)
		}
		for _, mt := range []string{mtOCIManifest, ""} {
			m := fmt.Sprintf(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`,
				blobDigest(cfg), len(cfg))
			resp = e.putRaw(ciEast, "app/manifests/v1", pass, mt, []byte(m))
			if msg := message(resp); resp.StatusCode != http.StatusMethodNotAllowed ||
				msg != "UNSUPPORTED: Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'" {
				t.Fatalf("Content-Type %q: %d %s", mt, resp.StatusCode, msg)
			}
		}
	})
}

// Layer GETs are redirected (307) to a pre-signed URL on another host, which serves the layer only
// without the registry's Authorization header and only while the signature holds.
func TestRegistryLayerRedirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	pass := e.directPassword(e.session(ciAccount, "pusher"), "us-east-1")
	e.directRepo(ciEast, "app", "MUTABLE")
	data := "a layer"
	d := blobDigest([]byte(data))
	if resp := e.rawRequest(ciEast, http.MethodPost, "/v2/app/blobs/uploads/?digest="+d, pass, data, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, e.regs[ciEast].URL+"/v2/app/blobs/"+d, nil)
	req.SetBasicAuth("AWS", pass)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(loc, "X-Amz-Signature=") {
		t.Fatalf("GET blob: %d %q", resp.StatusCode, loc)
	}
	u, _ := url.Parse(loc)
	if reg, _ := url.Parse(e.regs[ciEast].URL); u.Hostname() == reg.Hostname() {
		t.Fatalf("the layer host %s is the registry's", u.Host)
	}
	get := func(target, authorization string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(loc, ""); code != http.StatusOK || body != data {
		t.Fatalf("pre-signed GET: %d %q", code, body)
	}
	if code, body := get(loc, req.Header.Get("Authorization")); code != http.StatusBadRequest || !strings.Contains(body, "Only one auth mechanism allowed") {
		t.Fatalf("pre-signed GET with the registry's credentials: %d %q", code, body)
	}
	if code, body := get(strings.Replace(loc, "X-Amz-Signature=", "X-Amz-Signature=0", 1), ""); code != http.StatusForbidden || !strings.Contains(body, "SignatureDoesNotMatch") {
		t.Fatalf("tampered signature: %d %q", code, body)
	}
	e.clock.advance(downloadTTL + time.Second)
	if code, body := get(loc, ""); code != http.StatusForbidden || !strings.Contains(body, "Request has expired") {
		t.Fatalf("expired URL: %d %q", code, body)
	}
	// A client that follows the redirect the way HTTP clients do (dropping credentials for
	// another host) reads the layer; go-containerregistry does (TestRegistryPushPull reads every
	// layer back through it).
	e2 := newEnv(t, envOptions{})
	pass2 := e2.directPassword(e2.session(ciAccount, "pusher"), "us-east-1")
	e2.directRepo(ciEast, "app", "MUTABLE")
	e2.rawRequest(ciEast, http.MethodPost, "/v2/app/blobs/uploads/?digest="+d, pass2, data, nil)
	if resp := e2.rawRequest(ciEast, http.MethodGet, "/v2/app/blobs/"+d, pass2, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("followed redirect: %d", resp.StatusCode)
	}
}

// With ReportTokenTTL the token reports the full TTL but stops working with the session that
// fetched it, as ECR has been seen to do.
func TestRegistryTokenDiesWithSession(t *testing.T) {
	t.Parallel()
	for _, report := range []bool{false, true} {
		t.Run(fmt.Sprintf("report=%v", report), func(t *testing.T) {
			e := newEnv(t, envOptions{reportTokenTTL: report})
			sess := e.session(ciAccount, "pusher") // an hour
			out, err := e.client(sess, "us-east-1").GetAuthorizationToken(context.Background(), &awsecr.GetAuthorizationTokenInput{})
			if err != nil {
				t.Fatal(err)
			}
			life := aws.ToTime(out.AuthorizationData[0].ExpiresAt).Sub(e.clock.now())
			if want := map[bool]time.Duration{false: time.Hour, true: e.svc.o.TokenTTL}[report]; life < want-time.Second || life > want {
				t.Errorf("reported life %s, want %s", life, want)
			}
			raw, _ := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
			_, pass, _ := strings.Cut(string(raw), ":")
			e.directRepo(ciEast, "app", "MUTABLE")
			if resp := e.rawRequest(ciEast, http.MethodGet, "/v2/app/tags/list", pass, "", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("within the session: %d", resp.StatusCode)
			}
			e.clock.advance(time.Hour + time.Second)
			if resp := e.rawRequest(ciEast, http.MethodGet, "/v2/app/tags/list", pass, "", nil); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("after the session: %d", resp.StatusCode)
			}
		})
	}
}

func TestRegistryMount(t *testing.T) {
	t.Parallel()
	for _, enabled := range []bool{false, true} {
		t.Run(fmt.Sprintf("mounting=%v", enabled), func(t *testing.T) {
			e := newEnv(t, envOptions{blobMounting: enabled})
			pass := e.directPassword(e.session(ciAccount, "pusher"), "us-east-1")
			e.directRepo(ciEast, "base", "MUTABLE")
			e.directRepo(ciEast, "app", "MUTABLE")
			data := "shared layer"
			d := blobDigest([]byte(data))
			resp := e.rawRequest(ciEast, http.MethodPost, "/v2/base/blobs/uploads/?digest="+d, pass, data, nil)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("seed: %d", resp.StatusCode)
			}
			resp = e.rawRequest(ciEast, http.MethodPost, "/v2/app/blobs/uploads/?mount="+d+"&from=base", pass, "", nil)
			want := http.StatusAccepted
			if enabled {
				want = http.StatusCreated
			}
			if resp.StatusCode != want {
				t.Fatalf("mount: %d, want %d", resp.StatusCode, want)
			}
		})
	}
}

// patternReader yields n deterministic bytes without holding them.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	for i := range b {
		b[i] = byte((p.off + int64(i)) * 31 >> 3)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// TestRegistryLargeBlobStreams pushes a 64 MiB layer in one streamed PATCH (answered 201, as ECR
// answers every PATCH) and checks the
// server never buffered it: the heap grows far less than the blob.
func TestRegistryLargeBlobStreams(t *testing.T) { // not parallel: it measures allocations
	if testing.Short() {
		t.Skip("64 MiB upload")
	}
	const size = 64 << 20
	e := newEnv(t, envOptions{})
	pass := e.directPassword(e.session(ciAccount, "pusher"), "us-east-1")
	e.directRepo(ciEast, "big", "MUTABLE")
	h := sha256.New()
	if _, err := io.Copy(h, &patternReader{n: size}); err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))

	resp := e.rawRequest(ciEast, http.MethodPost, "/v2/big/blobs/uploads/", pass, "", nil)
	loc := resp.Header.Get("Location")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	req, _ := http.NewRequest(http.MethodPatch, e.regs[ciEast].URL+loc, &patternReader{n: size})
	req.SetBasicAuth("AWS", pass)
	presp, err := http.DefaultClient.Do(req)
	if err != nil || presp.StatusCode != http.StatusCreated {
		t.Fatalf("PATCH: %v %v", err, presp)
	}
	presp.Body.Close()
	runtime.ReadMemStats(&after)
	if grew := int64(after.TotalAlloc) - int64(before.TotalAlloc); grew > size/2 {
		t.Fatalf("allocated %d bytes streaming a %d-byte blob", grew, size)
	}
	resp = e.rawRequest(ciEast, http.MethodPut, loc+"?digest="+digest, pass, "", nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %d", resp.StatusCode)
	}
	resp = e.rawRequest(ciEast, http.MethodGet, "/v2/big/blobs/"+digest, pass, "", nil)
	g := sha256.New()
	n, _ := io.Copy(g, resp.Body)
	if n != size || "sha256:"+hex.EncodeToString(g.Sum(nil)) != digest {
		t.Fatalf("read back %d bytes", n)
	}
}
