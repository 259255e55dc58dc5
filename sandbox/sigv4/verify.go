package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const amzDateFormat = "20060102T150405Z"

// sdkSkips are headers aws-sdk-go-v2's signer never signs, so a signature over them cannot
// be recomputed with it. No AWS SDK or botocore signs them either.
var sdkSkips = map[string]bool{
	"authorization": true, "user-agent": true, "x-amzn-trace-id": true, "expect": true, "transfer-encoding": true,
}

var signer = v4.NewSigner()

// Verify is the package-level Verify with v's clock and skew.
func (v Verifier) Verify(r *http.Request, body []byte, service string, lookup Lookup) (Scope, error) {
	fail := func(k kind, format string, args ...any) error {
		return newError(service, k, fmt.Sprintf(format, args...))
	}
	auths := r.Header.Values("Authorization")
	if len(auths) == 0 || strings.TrimSpace(auths[0]) == "" {
		return Scope{}, fail(kindMissing, "Missing Authentication Token")
	}
	if len(auths) > 1 {
		return Scope{}, fail(kindIncomplete, "Authorization header must be sent once")
	}
	a, err := parseAuthorization(auths[0])
	if err != nil {
		return Scope{}, fail(kindIncomplete, "%v", err)
	}
	sc := a.scope

	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return sc, fail(kindIncomplete, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return sc, fail(kindIncomplete, "X-Amz-Date %q is not an ISO8601 basic format date (yyyyMMdd'T'HHmmss'Z')", truncate(amzDate))
	}
	if err := v.checkScope(a, service, t); err != nil {
		return sc, fail(kindSignature, "%v", err)
	}
	if err := v.checkClock(t); err != nil {
		return sc, fail(kindSignature, "%v", err)
	}

	secret, err := lookup(sc.AccessKeyID)
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			return sc, ae
		}
		return sc, fail(kindInvalidToken, msgInvalidToken)
	}
	token := r.Header.Get("X-Amz-Security-Token")
	if subtle.ConstantTimeCompare([]byte(token), []byte(secret.SessionToken)) != 1 {
		// A session key without its token, with another token, or a long-term key with one.
		return sc, fail(kindInvalidToken, msgInvalidToken)
	}

	payloadHash := sha256Hex(body)
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash {
		return sc, fail(kindSignature, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}

	clone, tokenSigned, err := signedClone(r, a)
	if err != nil {
		return sc, fail(kindSignature, "%v", err)
	}
	creds := aws.Credentials{AccessKeyID: sc.AccessKeyID, SecretAccessKey: secret.SecretAccessKey}
	if tokenSigned {
		creds.SessionToken = token
	}
	if err := signer.SignHTTP(context.Background(), creds, clone, payloadHash, sc.Service, sc.Region, t); err != nil {
		return sc, fail(kindSignature, "%s", msgMismatch)
	}
	want, err := parseAuthorization(clone.Header.Get("Authorization"))
	if err != nil || want.signedRaw != a.signedRaw {
		// The client's SignedHeaders list is not the canonical one (unsorted, upper case,
		// missing host or x-amz-date), so it cannot have signed what AWS would canonicalise.
		return sc, fail(kindSignature, "%s", msgMismatch)
	}
	if !hmac.Equal([]byte(want.signature), []byte(a.signature)) {
		return sc, fail(kindSignature, "%s", msgMismatch)
	}
	return sc, nil
}

// checkScope applies AWS's credential scope rules.
func (v Verifier) checkScope(a authHeader, service string, t time.Time) error {
	sc := a.scope
	switch {
	case sc.Service != service:
		return fmt.Errorf("Credential should be scoped to correct service: '%s'. ", service)
	case sc.Region == "":
		return fmt.Errorf("Credential should be scoped to a valid region. ")
	case a.terminator != "aws4_request":
		return fmt.Errorf("Credential should be scoped with a valid terminator: 'aws4_request', not '%s'. ", truncate(a.terminator))
	case sc.Date != t.Format("20060102"):
		return fmt.Errorf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			truncate(sc.Date), t.Format("20060102"), t.Format(amzDateFormat))
	}
	for _, h := range a.signedHeaders {
		if h == "host" {
			return nil
		}
	}
	return fmt.Errorf("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
}

// checkClock rejects requests signed more than MaxSkew before or after now, in AWS's words.
func (v Verifier) checkClock(t time.Time) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew == 0 {
		skew = MaxSkew
	}
	n := now().UTC()
	mins := int(skew / time.Minute)
	if t.Before(n.Add(-skew)) {
		return fmt.Errorf("Signature expired: %s is now earlier than %s (%s - %d min.)",
			t.Format(amzDateFormat), n.Add(-skew).Format(amzDateFormat), n.Format(amzDateFormat), mins)
	}
	if t.After(n.Add(skew)) {
		return fmt.Errorf("Signature not yet current: %s is still later than %s (%s + %d min.)",
			t.Format(amzDateFormat), n.Add(skew).Format(amzDateFormat), n.Format(amzDateFormat), mins)
	}
	return nil
}

// signedClone builds the request the SDK signer is given: same method, escaped path and
// query, and exactly the headers the client signed. The signer takes the host from
// clone.Host and Content-Length from clone.ContentLength (never from headers), and adds
// X-Amz-Date itself from the signing time; the URL has no scheme so that it does not strip
// a port the client kept.
func signedClone(r *http.Request, a authHeader) (*http.Request, bool, error) {
	u := &url.URL{Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	clone := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: http.Header{}, ContentLength: 0}
	tokenSigned := false
	for _, h := range a.signedHeaders {
		switch {
		case h == "host", h == "x-amz-date":
		case h == "x-amz-security-token":
			tokenSigned = true
		case h == "content-length":
			n := r.ContentLength
			if v := r.Header.Get("Content-Length"); v != "" {
				n, _ = strconv.ParseInt(v, 10, 64)
			}
			if n <= 0 {
				return nil, false, fmt.Errorf("the sandbox cannot verify a signature over Content-Length %d", n)
			}
			clone.ContentLength = n
		case sdkSkips[h]:
			return nil, false, fmt.Errorf("the sandbox cannot verify a signature over the %q header", h)
		default:
			if vals := r.Header.Values(h); len(vals) > 0 {
				clone.Header[http.CanonicalHeaderKey(h)] = vals
			}
		}
	}
	return clone, tokenSigned, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
