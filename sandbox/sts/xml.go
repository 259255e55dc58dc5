package sts

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"time"

	"github.com/ecrpush/ecrpush/sandbox/world"
)

// namespace is the STS 2011-06-15 XML namespace every response carries.
const namespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// The response shapes follow the AWS API reference examples, element order included;
// botocore and aws-sdk-go-v2 both parse by name, but keeping AWS's order makes diffs against
// captured responses meaningful.

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type credentialsXML struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumedRoleUserXML struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type webIdentityResult struct {
	SubjectFromWebIdentityToken string             `xml:"SubjectFromWebIdentityToken"`
	Audience                    string             `xml:"Audience"`
	AssumedRoleUser             assumedRoleUserXML `xml:"AssumedRoleUser"`
	Credentials                 credentialsXML     `xml:"Credentials"`
	Provider                    string             `xml:"Provider"`
}

type webIdentityResponse struct {
	XMLName  xml.Name          `xml:"AssumeRoleWithWebIdentityResponse"`
	Xmlns    string            `xml:"xmlns,attr"`
	Result   webIdentityResult `xml:"AssumeRoleWithWebIdentityResult"`
	Metadata responseMetadata  `xml:"ResponseMetadata"`
}

type assumeRoleResult struct {
	AssumedRoleUser assumedRoleUserXML `xml:"AssumedRoleUser"`
	Credentials     credentialsXML     `xml:"Credentials"`
}

type assumeRoleResponse struct {
	XMLName  xml.Name         `xml:"AssumeRoleResponse"`
	Xmlns    string           `xml:"xmlns,attr"`
	Result   assumeRoleResult `xml:"AssumeRoleResult"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type callerIdentityResult struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

type callerIdentityResponse struct {
	XMLName  xml.Name             `xml:"GetCallerIdentityResponse"`
	Xmlns    string               `xml:"xmlns,attr"`
	Result   callerIdentityResult `xml:"GetCallerIdentityResult"`
	Metadata responseMetadata     `xml:"ResponseMetadata"`
}

type errorXML struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type errorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Error     errorXML `xml:"Error"`
	RequestID string   `xml:"RequestId"`
}

func credentialsOf(s *world.Session) credentialsXML {
	return credentialsXML{
		AccessKeyID:     s.AccessKeyID,
		SecretAccessKey: s.SecretAccessKey,
		SessionToken:    s.SessionToken,
		// AWS sends whole seconds in UTC with a Z; botocore and the Go SDK both parse it.
		Expiration: s.Expiration.UTC().Format(time.RFC3339),
	}
}

func assumedRoleUserOf(s *world.Session) assumedRoleUserXML {
	return assumedRoleUserXML{Arn: s.ARN(), AssumedRoleID: s.UserID()}
}

// writeXML writes v as an STS XML document with the request id header AWS sends.
func writeXML(w http.ResponseWriter, status int, requestID string, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		// Only programming errors reach here: every shape is plain strings.
		status = http.StatusInternalServerError
		body, _ = xml.Marshal(errorDocument(errInternal(), requestID))
	}
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("x-amzn-RequestId", requestID)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func errorDocument(e *apiError, requestID string) errorResponse {
	return errorResponse{Xmlns: namespace, Error: errorXML{Type: e.errType(), Code: e.Code, Message: e.Message}, RequestID: requestID}
}

func writeError(w http.ResponseWriter, requestID string, e *apiError) {
	writeXML(w, e.Status, requestID, errorDocument(e, requestID))
}
