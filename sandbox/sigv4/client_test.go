package sigv4

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// awsServer answers GetCallerIdentity (query protocol) and GetAuthorizationToken (JSON)
// after verifying the signature, rendering failures as the protocol's error document.
func awsServer(t *testing.T, service string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, err := Verify(r, body, service, lookup)
		var ae *Error
		if err != nil && !errors.As(err, &ae) {
			t.Errorf("Verify returned %T", err)
		}
		if QueryProtocol(service) {
			w.Header().Set("Content-Type", "text/xml")
			if ae != nil {
				w.WriteHeader(ae.Status)
				fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`, ae.Code, ae.Message)
				return
			}
			fmt.Fprint(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
				`<Arn>arn:aws:sts::111122223333:assumed-role/ci/run</Arn><UserId>AROAEXAMPLE:run</UserId><Account>111122223333</Account>`+
				`</GetCallerIdentityResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if ae != nil {
			w.WriteHeader(ae.Status)
			fmt.Fprintf(w, `{"__type":%q,"message":%q}`, ae.Code, ae.Message)
			return
		}
		fmt.Fprint(w, `{"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":1.7e9,"proxyEndpoint":"https://111122223333.dkr.ecr.us-east-1.amazonaws.com"}]}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func sdkConfig(c aws.Credentials) aws.Config {
	return aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		RetryMaxAttempts: 1,
	}
}

func TestSDKClients(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stsSrv, ecrSrv := awsServer(t, "sts"), awsServer(t, "ecr")
	for _, tc := range []struct {
		name  string
		creds aws.Credentials
		code  string
	}{
		{"session", sessionCreds, ""},
		{"user", userCreds, ""},
		{"wrong secret", aws.Credentials{AccessKeyID: userKey, SecretAccessKey: "nope"}, "sig"},
		{"missing token", aws.Credentials{AccessKeyID: sessionKey, SecretAccessKey: secretS}, "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sdkConfig(tc.creds)
			stsc := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(stsSrv.URL) })
			out, err := stsc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			checkSDK(t, "sts", err, map[string]string{"sig": "SignatureDoesNotMatch", "token": "InvalidClientTokenId"}[tc.code])
			if err == nil && aws.ToString(out.Account) != "111122223333" {
				t.Fatalf("account %q", aws.ToString(out.Account))
			}
			ecrc := ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String(ecrSrv.URL) })
			_, err = ecrc.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
			checkSDK(t, "ecr", err, map[string]string{"sig": "InvalidSignatureException", "token": "UnrecognizedClientException"}[tc.code])
		})
	}
}

func checkSDK(t *testing.T, what string, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("%s: err = %v, want API error %s", what, err, code)
	}
}

// TestAWSCLI checks botocore's signer (aws CLI v1), which canonicalises differently from
// the Go SDK (no Content-Length, its own header set).
func TestAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns the aws CLI")
	}
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("aws CLI not installed")
	}
	stsSrv, ecrSrv := awsServer(t, "sts"), awsServer(t, "ecr")
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"AWS_ACCESS_KEY_ID=" + sessionKey, "AWS_SESSION_TOKEN=" + tokenS,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1",
	}
	for _, tc := range []struct {
		args   []string
		secret string
		fails  bool
		want   string
	}{
		{[]string{"sts", "get-caller-identity", "--endpoint-url", stsSrv.URL}, secretS, false, "111122223333"},
		{[]string{"ecr", "get-authorization-token", "--endpoint-url", ecrSrv.URL}, secretS, false, "QVdTOnB3"},
		{[]string{"sts", "get-caller-identity", "--endpoint-url", stsSrv.URL}, "wrong", true, "SignatureDoesNotMatch"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, awsBin, append(tc.args, "--output", "json")...)
		cmd.Env = append(env, "AWS_SECRET_ACCESS_KEY="+tc.secret)
		out, err := cmd.CombinedOutput()
		cancel()
		if (err != nil) != tc.fails || !strings.Contains(string(out), tc.want) {
			t.Fatalf("aws %s: %v\n%s", strings.Join(tc.args[:2], " "), err, out)
		}
	}
}
