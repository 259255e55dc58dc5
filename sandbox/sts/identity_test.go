package sts_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ecrpush/ecrpush/sandbox/world"
)

func TestGetCallerIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out, err := e.webIdentity(ciRoleARN, "who", e.ghToken(nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	issued := static(out)
	c := out.Credentials

	who, err := e.client(issued).GetCallerIdentity(context.Background(), nil)
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if *who.Account != ciAccount || *who.Arn != "arn:aws:sts::111122223333:assumed-role/gha-push/who" ||
		*who.UserId != *out.AssumedRoleUser.AssumedRoleId {
		t.Errorf("identity %s %s %s", *who.Account, *who.Arn, *who.UserId)
	}

	u := &world.User{Account: destAccount, Name: "ops"}
	if err := e.world.AddUser(u); err != nil {
		t.Fatal(err)
	}
	userWho, err := e.client(credentials.NewStaticCredentialsProvider(u.AccessKeyID, u.SecretAccessKey, "")).
		GetCallerIdentity(context.Background(), nil)
	if err != nil || *userWho.Arn != "arn:aws:iam::444455556666:user/ops" || *userWho.Account != destAccount {
		t.Errorf("user identity %v %v", userWho, err)
	}

	tests := []struct {
		name   string
		creds  aws.CredentialsProvider
		code   string
		status int
		msg    string
	}{
		{"forged key", credentials.NewStaticCredentialsProvider("ASIAFORGEDFORGEDFORG", "secret", "token"),
			"InvalidClientTokenId", 403, "The security token included in the request is invalid."},
		{"wrong secret", credentials.NewStaticCredentialsProvider(*c.AccessKeyId, "not-the-secret", *c.SessionToken),
			"SignatureDoesNotMatch", 403, ""},
		{"anonymous", aws.AnonymousCredentials{}, "MissingAuthenticationToken", 403, "Request is missing Authentication Token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client(tc.creds).GetCallerIdentity(context.Background(), nil)
			wantAPIError(t, err, tc.code, tc.status, tc.msg)
		})
	}

	// Past the expiration on STS's clock the same credentials are refused.
	e.clock.Advance(time.Hour + time.Second)
	_, err = e.client(issued).GetCallerIdentity(context.Background(), nil)
	wantAPIError(t, err, "ExpiredToken", 400, "The security token included in the request is expired")
}

// TestGetCallerIdentityShortLifetime expires credentials on the real clock, as the
// sandbox's short-lived credential setting makes them.
func TestGetCallerIdentityShortLifetime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.world.CredentialLifetime = time.Second
	out, err := e.webIdentity(ciRoleARN, "brief", e.ghToken(nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	// Expiration is truncated to the second, so at most 1 s from now.
	time.Sleep(time.Until(*out.Credentials.Expiration) + 10*time.Millisecond)
	_, err = e.client(static(out)).GetCallerIdentity(context.Background(), nil)
	wantAPIError(t, err, "ExpiredToken", 400, "expired")
}
