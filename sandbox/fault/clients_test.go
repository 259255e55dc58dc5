package fault

import (
	"context"
	"errors"
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

// TestSDKReadsFaults checks that aws-sdk-go-v2 deserializes every injected AWS error into
// the error code AWS would send (the retryer keys off these codes).
func TestSDKReadsFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := aws.Config{Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "secret", "")}
	for _, tc := range []struct {
		name  string
		p     Protocol
		fault Config
		codes []string
	}{
		{"sts throttle", AWSQuery, Config{ThrottleRate: 1}, []string{"Throttling"}},
		{"sts 5xx", AWSQuery, Config{ErrorRate: 1}, []string{"InternalFailure", "ServiceUnavailable"}},
		{"ecr throttle", AWSJSON, Config{ThrottleRate: 1}, []string{"ThrottlingException"}},
		{"ecr 5xx", AWSJSON, Config{ErrorRate: 1}, []string{"InternalFailure", "ServiceUnavailableException"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newServer(t, New(3).Wrap("api", tc.p, tc.fault, ok))
			seen := map[string]bool{}
			for i := 0; i < 12; i++ {
				var err error
				if tc.p == AWSQuery {
					c := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(srv.URL) })
					_, err = c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
				} else {
					c := ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String(srv.URL) })
					_, err = c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
				}
				var ae smithy.APIError
				if !errors.As(err, &ae) {
					t.Fatalf("err = %v, want an API error", err)
				}
				seen[ae.ErrorCode()] = true
			}
			for _, c := range tc.codes {
				if !seen[c] {
					t.Errorf("code %s never seen: %v", c, seen)
				}
			}
			if len(seen) != len(tc.codes) {
				t.Errorf("codes %v, want %v", seen, tc.codes)
			}
		})
	}
}

// TestCLIReadsFaults checks botocore (aws CLI v1) parses the throttles as AWS's.
func TestCLIReadsFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns the aws CLI")
	}
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("aws CLI not installed")
	}
	for _, tc := range []struct {
		p    Protocol
		args []string
		want string
	}{
		{AWSQuery, []string{"sts", "get-caller-identity"}, "(Throttling) when calling the GetCallerIdentity operation"},
		{AWSJSON, []string{"ecr", "get-authorization-token"}, "(ThrottlingException) when calling the GetAuthorizationToken operation"},
	} {
		srv, _ := newServer(t, New(3).Wrap("api", tc.p, Config{ThrottleRate: 1}, ok))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, awsBin, append(tc.args, "--endpoint-url", srv.URL)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
			"AWS_ACCESS_KEY_ID=AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_DEFAULT_REGION=us-east-1",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
			"AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard"}
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "Rate exceeded") {
			t.Fatalf("aws %s: %v\n%s", strings.Join(tc.args, " "), err, out)
		}
	}
}
