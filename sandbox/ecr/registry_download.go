package ecr

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// downloadTTL is how long a layer's pre-signed URL works (assumed: ECR does not say; S3's
// pre-signed URLs take X-Amz-Expires, and an hour is what GetDownloadUrlForLayer's are seen with).
const downloadTTL = time.Hour

// downloads is the sandbox's stand-in for the S3 bucket ECR keeps layers in: a registry answers a
// layer GET with a 307 to a pre-signed URL here, on another host, and this host serves the layer
// only to a request that carries the signature in its query and no Authorization header — S3
// refuses a request with two ways of authenticating, so a client that forwards the registry's
// credentials on the redirect fails here as it does against ECR.
type downloads struct {
	key []byte

	mu       sync.RWMutex
	endpoint string // scheme://host:port, "" until SetDownloadEndpoint
	distinct bool   // the endpoint's host name is not the registries'
}

func newDownloads() *downloads {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &downloads{key: key}
}

// SetDownloadEndpoint records where DownloadHandler listens ("http://127.0.0.1:PORT"). Until it is
// called, layer GETs are answered by the registry itself. A loopback address is advertised as
// "localhost": the same socket under a host name other than the registries' (S3's is other than
// ECR's), so HTTP clients drop the registry's credentials when they follow the redirect (they
// decide by host name, ignoring the port), and go-containerregistry's guard against redirects to
// other private IP addresses lets it through (a name is not an address). Only then does the
// bucket refuse a request carrying an Authorization header, as S3 does; on any other address
// (Config.Host for a container's sake) a client cannot tell the two hosts apart, and it does not.
func (s *Service) SetDownloadEndpoint(endpoint string) {
	endpoint = strings.TrimRight(endpoint, "/")
	distinct := false
	if u, err := url.Parse(endpoint); err == nil {
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
			u.Host = net.JoinHostPort("localhost", u.Port())
			endpoint, distinct = u.String(), true
		}
	}
	s.downloads.mu.Lock()
	s.downloads.endpoint, s.downloads.distinct = endpoint, distinct
	s.downloads.mu.Unlock()
}

// DownloadHandler is the layer bucket's endpoint (see downloads).
func (s *Service) DownloadHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveDownload(w, r) })
}

// url is a pre-signed URL for digest in registry id, valid from now for downloadTTL.
func (d *downloads) url(id RegistryID, digest string, now time.Time) (string, bool) {
	d.mu.RLock()
	endpoint := d.endpoint
	d.mu.RUnlock()
	if endpoint == "" {
		return "", false
	}
	path := "/" + id.Account + "/" + id.Region + "/" + digest
	date := now.UTC().Format("20060102T150405Z")
	expires := strconv.Itoa(int(downloadTTL / time.Second))
	q := url.Values{
		"X-Amz-Algorithm":     {"AWS4-HMAC-SHA256"},
		"X-Amz-Credential":    {"ASIAEXAMPLELAYERS/" + now.UTC().Format("20060102") + "/" + id.Region + "/s3/aws4_request"},
		"X-Amz-Date":          {date},
		"X-Amz-Expires":       {expires},
		"X-Amz-SignedHeaders": {"host"},
		"X-Amz-Signature":     {d.sign(path, date, expires)},
	}
	return endpoint + path + "?" + q.Encode(), true
}

func (d *downloads) sign(path, date, expires string) string {
	m := hmac.New(sha256.New, d.key)
	m.Write([]byte(path + "\n" + date + "\n" + expires))
	return hex.EncodeToString(m.Sum(nil))
}

// s3Error is S3's XML error body.
type s3Error struct {
	XMLName      xml.Name `xml:"Error"`
	Code         string   `xml:"Code"`
	Message      string   `xml:"Message"`
	ArgumentName string   `xml:"ArgumentName,omitempty"`
	RequestID    string   `xml:"RequestId"`
}

func writeS3Error(w http.ResponseWriter, status int, e s3Error) {
	e.RequestID = strings.ToUpper(strings.ReplaceAll(randomUUID(), "-", "")[:16])
	body, _ := xml.Marshal(e)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = w.Write(append([]byte(xml.Header), body...))
}

func (s *Service) serveDownload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeS3Error(w, http.StatusMethodNotAllowed, s3Error{Code: "MethodNotAllowed", Message: "The specified method is not allowed against this resource."})
		return
	}
	q := r.URL.Query()
	s.downloads.mu.RLock()
	strict := s.downloads.distinct
	s.downloads.mu.RUnlock()
	if strict && r.Header.Get("Authorization") != "" && q.Get("X-Amz-Algorithm") != "" {
		writeS3Error(w, http.StatusBadRequest, s3Error{Code: "InvalidArgument", ArgumentName: "Authorization",
			Message: "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified"})
		return
	}
	date, expires, sig := q.Get("X-Amz-Date"), q.Get("X-Amz-Expires"), q.Get("X-Amz-Signature")
	if sig == "" || !hmac.Equal([]byte(sig), []byte(s.downloads.sign(r.URL.Path, date, expires))) {
		writeS3Error(w, http.StatusForbidden, s3Error{Code: "SignatureDoesNotMatch",
			Message: "The request signature we calculated does not match the signature you provided. Check your key and signing method."})
		return
	}
	signed, err := time.Parse("20060102T150405Z", date)
	secs, serr := strconv.Atoi(expires)
	if err != nil || serr != nil || !s.now().Before(signed.Add(time.Duration(secs)*time.Second)) {
		writeS3Error(w, http.StatusForbidden, s3Error{Code: "AccessDenied", Message: "Request has expired"})
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) != 3 {
		writeS3Error(w, http.StatusNotFound, s3Error{Code: "NoSuchKey", Message: "The specified key does not exist."})
		return
	}
	rg, ok := s.registry(RegistryID{Account: parts[0], Region: parts[1]})
	if !ok {
		writeS3Error(w, http.StatusNotFound, s3Error{Code: "NoSuchKey", Message: "The specified key does not exist."})
		return
	}
	f, _, err := rg.store.open(parts[2])
	if err != nil {
		writeS3Error(w, http.StatusNotFound, s3Error{Code: "NoSuchKey", Message: "The specified key does not exist."})
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+strings.TrimPrefix(parts[2], "sha256:")[:32]+`"`)
	http.ServeContent(w, r, "", time.Time{}, f)
}
