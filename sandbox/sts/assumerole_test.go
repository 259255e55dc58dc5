package sts_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecrpush/ecrpush/internal/iam"
	"github.com/ecrpush/ecrpush/sandbox/world"
)

// ciCreds federates into the ci role with a GitHub token.
func (e *env) ciCreds(session string) aws.CredentialsProvider {
	e.t.Helper()
	out, err := e.webIdentity(ciRoleARN, session, e.ghToken(nil), 0)
	if err != nil {
		e.t.Fatalf("federate: %v", err)
	}
	return static(out)
}

func (e *env) assumeRole(creds aws.CredentialsProvider, role, session string, duration int32) (*awssts.AssumeRoleOutput, error) {
	in := &awssts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String(session)}
	if duration != 0 {
		in.DurationSeconds = aws.Int32(duration)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.client(creds).AssumeRole(ctx, in)
}

func TestAssumeRoleChainingIntoAnotherAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ci := e.ciCreds("gha-run-7")

	_, err := e.assumeRole(ci, replRoleARN, "replicate", 7200)
	wantAPIError(t, err, "ValidationError", 400,
		"The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")

	for _, d := range []int32{0, 3600} {
		out, err := e.assumeRole(ci, replRoleARN, "replicate", d)
		if err != nil {
			t.Fatalf("AssumeRole (duration %d): %v", d, err)
		}
		if left := time.Until(*out.Credentials.Expiration); left > time.Hour+time.Second || left < 59*time.Minute {
			t.Errorf("chained credentials live %v, want 1 h", left)
		}
		if got := *out.AssumedRoleUser.Arn; got != "arn:aws:sts::444455556666:assumed-role/replicator/replicate" {
			t.Errorf("Arn = %s", got)
		}
		sess, err := e.world.Lookup(*out.Credentials.AccessKeyId)
		if err != nil || !sess.Chained || sess.Account != destAccount {
			t.Errorf("world session %+v, %v", sess, err)
		}
		dest := credentials.NewStaticCredentialsProvider(*out.Credentials.AccessKeyId,
			*out.Credentials.SecretAccessKey, *out.Credentials.SessionToken)
		who, err := e.client(dest).GetCallerIdentity(context.Background(), nil)
		if err != nil {
			t.Fatalf("GetCallerIdentity: %v", err)
		}
		if *who.Account != destAccount || *who.Arn != *out.AssumedRoleUser.Arn || *who.UserId != *out.AssumedRoleUser.AssumedRoleId {
			t.Errorf("caller identity %s %s %s", *who.Account, *who.Arn, *who.UserId)
		}
	}

	// The SDK's assume-role provider, as `--replicate-to ...=ROLE_ARN` uses it.
	p := stscreds.NewAssumeRoleProvider(e.client(ci), replRoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "provider"
	})
	creds, err := aws.NewCredentialsCache(p).Retrieve(context.Background())
	if err != nil || !strings.HasPrefix(creds.AccessKeyID, "ASIA") {
		t.Errorf("AssumeRoleProvider: %v %v", creds.AccessKeyID, err)
	}
}

func TestAssumeRoleRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Same-account targets: one trusts the ci role by ARN (no identity policy needed), one
	// only trusts the account root (the identity policy must grant it, and does not).
	byARN := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + ciRoleARN + `"},"Action":"sts:AssumeRole"}]}`
	byRoot := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`
	for name, trust := range map[string]string{"by-arn": byARN, "by-root": byRoot} {
		if err := e.world.AddRole(&world.Role{Account: ciAccount, Name: name, Trust: mustPolicy(t, trust), TrustText: trust}); err != nil {
			t.Fatal(err)
		}
	}
	ci := e.ciCreds("run")
	out, err := e.webIdentity(gcpRoleARN, "gcp", e.googleToken(nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	gcp := static(out)

	if _, err := e.assumeRole(ci, "arn:aws:iam::111122223333:role/by-arn", "same", 0); err != nil {
		t.Errorf("same account, trust names the caller: %v", err)
	}
	denied := func(caller, role string) string {
		return "User: " + caller + " is not authorized to perform: sts:AssumeRole on resource: " + role
	}
	ciARN := "arn:aws:sts::111122223333:assumed-role/gha-push/run"
	tests := []struct {
		name    string
		creds   aws.CredentialsProvider
		role    string
		session string
		code    string
		status  int
		msg     string
	}{
		{"cross account without identity policy", ci, soloRoleARN, "s1", "AccessDenied", 403, denied(ciARN, soloRoleARN)},
		{"same account trusting root only", ci, "arn:aws:iam::111122223333:role/by-root", "s1", "AccessDenied", 403,
			denied(ciARN, "arn:aws:iam::111122223333:role/by-root")},
		{"unknown role", ci, "arn:aws:iam::444455556666:role/nope", "s1", "AccessDenied", 403,
			denied(ciARN, "arn:aws:iam::444455556666:role/nope")},
		{"trust names another role", gcp, replRoleARN, "s1", "AccessDenied", 403,
			denied("arn:aws:sts::111122223333:assumed-role/gcp-push/gcp", replRoleARN)},
		{"bad session name", ci, replRoleARN, "no spaces", "ValidationError", 400,
			"Value 'no spaces' at 'roleSessionName' failed to satisfy constraint"},
		{"not a role", ci, "arn:aws:iam::444455556666:user/replicator", "s1", "ValidationError", 400, "Request ARN is invalid"},
		{"anonymous", aws.AnonymousCredentials{}, replRoleARN, "s1", "MissingAuthenticationToken", 403,
			"Request is missing Authentication Token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.assumeRole(tc.creds, tc.role, tc.session, 0)
			wantAPIError(t, err, tc.code, tc.status, tc.msg)
		})
	}
}

func TestAssumeRoleFromUserIsNotChained(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	grant := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::111122223333:role/long"}]}`
	u := &world.User{Account: ciAccount, Name: "deployer", Policies: []*iam.Policy{mustPolicy(t, grant)}}
	if err := e.world.AddUser(u); err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`
	if err := e.world.AddRole(&world.Role{Account: ciAccount, Name: "long", Trust: mustPolicy(t, trust),
		MaxSessionDuration: 4 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	user := credentials.NewStaticCredentialsProvider(u.AccessKeyID, u.SecretAccessKey, "")
	out, err := e.assumeRole(user, "arn:aws:iam::111122223333:role/long", "u1", 7200)
	if err != nil {
		t.Fatalf("user AssumeRole for 2 h: %v", err)
	}
	if left := time.Until(*out.Credentials.Expiration); left < 119*time.Minute {
		t.Errorf("credentials live %v, want 2 h", left)
	}
	_, err = e.assumeRole(user, "arn:aws:iam::111122223333:role/long", "u1", 4*3600+1)
	wantAPIError(t, err, "ValidationError", 400, "exceeds the MaxSessionDuration set for this role")
}
