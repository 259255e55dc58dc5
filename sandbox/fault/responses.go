package fault

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// queryNamespace is STS's: it is the only query-protocol service in the sandbox, and
// clients ignore the namespace of an ErrorResponse anyway.
const queryNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

type awsError struct {
	status  int
	code    string
	message string
	fault   string // query protocol Type: Sender (client) or Receiver (server)
}

var (
	awsJSONErrors = map[Kind]awsError{
		Error500: {500, "InternalFailure", "We encountered an internal error. Please try again.", "Receiver"},
		Error503: {503, "ServiceUnavailableException", "Service is unavailable. Please try again later.", "Receiver"},
		Throttle: {400, "ThrottlingException", "Rate exceeded", "Sender"},
	}
	awsQueryErrors = map[Kind]awsError{
		Error500: {500, "InternalFailure", "We encountered an internal error. Please try again.", "Receiver"},
		Error503: {503, "ServiceUnavailable", "Service is unavailable. Please try again later.", "Receiver"},
		Throttle: {400, "Throttling", "Rate exceeded", "Sender"},
	}
	registryErrors = map[Kind]awsError{
		Error500: {500, "UNKNOWN", "unknown error", ""},
		Error503: {503, "UNAVAILABLE", "service unavailable", ""},
		Throttle: {429, "TOOMANYREQUESTS", "too many requests", ""},
	}
	plainErrors = map[Kind]awsError{
		Error500: {500, "", "internal server error", ""},
		Error503: {503, "", "service unavailable", ""},
		Throttle: {429, "", "too many requests", ""},
	}
)

func requestID(rng *rand.Rand) string {
	a, b := rng.Uint64(), rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", a>>32, (a>>16)&0xffff, a&0xfff, b>>52, b&0xffffffffffff)
}

func writeThrottle(w http.ResponseWriter, p Protocol, retryAfter time.Duration, reqID string) {
	if p == Registry || p == Plain {
		w.Header().Set("Retry-After", retryAfterSeconds(retryAfter))
	}
	write(w, p, Throttle, reqID)
}

// retryAfterSeconds rounds up to whole seconds (the header has no finer unit), 1s by default.
func retryAfterSeconds(d time.Duration) string {
	if d <= 0 {
		d = time.Second
	}
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

func write(w http.ResponseWriter, p Protocol, k Kind, reqID string) {
	hdr := w.Header()
	switch p {
	case AWSJSON:
		e := awsJSONErrors[k]
		body, _ := json.Marshal(map[string]string{"__type": e.code, "message": e.message})
		hdr.Set("Content-Type", "application/x-amz-json-1.1")
		hdr.Set("X-Amzn-Requestid", reqID)
		hdr.Set("X-Amzn-Errortype", e.code)
		w.WriteHeader(e.status)
		_, _ = w.Write(body)
	case AWSQuery:
		e := awsQueryErrors[k]
		type xmlError struct {
			Type    string `xml:"Type"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		}
		doc := struct {
			XMLName   xml.Name `xml:"ErrorResponse"`
			Xmlns     string   `xml:"xmlns,attr"`
			Error     xmlError `xml:"Error"`
			RequestID string   `xml:"RequestId"`
		}{Xmlns: queryNamespace, Error: xmlError{e.fault, e.code, e.message}, RequestID: reqID}
		body, _ := xml.Marshal(doc)
		hdr.Set("Content-Type", "text/xml")
		hdr.Set("X-Amzn-Requestid", reqID)
		w.WriteHeader(e.status)
		_, _ = w.Write(body)
	case Registry:
		e := registryErrors[k]
		body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": e.code, "message": e.message}}})
		hdr.Set("Content-Type", "application/json; charset=utf-8")
		hdr.Set("Docker-Distribution-Api-Version", "registry/2.0")
		w.WriteHeader(e.status)
		_, _ = w.Write(body)
	default:
		e := plainErrors[k]
		hdr.Set("Content-Type", "text/plain; charset=utf-8")
		hdr.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(e.status)
		_, _ = fmt.Fprintln(w, e.message)
	}
}
