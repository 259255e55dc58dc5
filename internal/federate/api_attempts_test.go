package federate_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecrpush/ecrpush/internal/federate"
)

// Every client built from a session's Config sends a call up to APIAttempts times: the SDK's
// default 3 lost about one ECR call in a thousand under e2e.TestFaultMatrix's 10% faults.
func TestSessionConfigRetriesAPICalls(t *testing.T) {
	start(t, nil)
	s, err := federate.Federate(context.Background(), federate.Options{RoleARN: ciRole})
	if err != nil {
		t.Fatal(err)
	}
	if got := ecr.NewFromConfig(s.Config).Options().Retryer.MaxAttempts(); got != federate.APIAttempts {
		t.Errorf("ECR client: %d attempts, want %d", got, federate.APIAttempts)
	}
	if got := sts.NewFromConfig(s.Config).Options().Retryer.MaxAttempts(); got != federate.APIAttempts {
		t.Errorf("STS client: %d attempts, want %d", got, federate.APIAttempts)
	}
	prod, err := s.Role(context.Background(), "arn:aws:iam::444455556666:role/ecrpush-deploy")
	if err != nil {
		t.Fatal(err)
	}
	if got := ecr.NewFromConfig(prod).Options().Retryer.MaxAttempts(); got != federate.APIAttempts {
		t.Errorf("ECR client of another role: %d attempts, want %d", got, federate.APIAttempts)
	}
}
