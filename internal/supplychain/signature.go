package supplychain

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// SigningStatus is one ECR managed-signing profile's state for the pushed image.
type SigningStatus struct {
	Profile       string `json:"signingProfileArn"`
	Status        string `json:"status"`
	FailureCode   string `json:"failureCode,omitempty"`
	FailureReason string `json:"failureReason,omitempty"`
}

// SignatureCheck is what --require-signature found in one registry.
type SignatureCheck struct {
	Registry   string          `json:"registry"`
	Signatures []Artifact      `json:"signatures"`
	Managed    []SigningStatus `json:"managedSigning,omitempty"`
}

// SignatureOptions bound RequireSignature.
type SignatureOptions struct {
	Timeout  time.Duration // per registry (default 5m)
	Interval time.Duration // between reads (default 5s)
	// Pushed says what is already written, for the error ("team/app:v1 (sha256:…)").
	Pushed string
}

// RequireSignature waits until the pushed digest has a signature referrer in the ci registry and at
// every destination (read with each one's own credentials): CISignature, then DestinationSignatures.
func RequireSignature(ctx context.Context, ci *Registry, dests []*Registry, digest v1.Hash, o SignatureOptions) ([]SignatureCheck, error) {
	c, err := CISignature(ctx, ci, digest, o)
	if err != nil {
		return []SignatureCheck{c}, err
	}
	rest, err := DestinationSignatures(ctx, dests, digest, c, o)
	return append([]SignatureCheck{c}, rest...), err
}

// CISignature waits for a signature of digest in the ci registry. It first follows ECR managed signing
// (DescribeImageSigningStatus) until every matching profile is COMPLETE or one FAILED, since the
// managed signature appears only then. A signature still missing after the timeout, or a FAILED
// signing, is a fixable error of one line; no key is ever involved here. Copy mode calls it before
// copying, so that a managed signature is there to be copied.
func CISignature(ctx context.Context, ci *Registry, digest v1.Hash, o SignatureOptions) (SignatureCheck, error) {
	timeout, interval := orDefault(o.Timeout, 5*time.Minute), orDefault(o.Interval, 5*time.Second)
	c := SignatureCheck{Registry: ci.Name}
	if ci.API != nil {
		st, err := waitManagedSigning(ctx, ci, digest, timeout, interval)
		c.Managed = st
		if err != nil {
			return c, withPushed(err, o.Pushed)
		}
	}
	sigs, err := waitSignature(ctx, ci, digest, timeout, interval)
	c.Signatures = sigs
	switch {
	case errors.Is(err, errTimeout):
		return c, fixable.New("--require-signature: %s has no signature in %s after %s%s: sign it before or as it is pushed (cosign sign, notation sign) or turn on ECR managed signing for the repository",
			ci.Repo.RepositoryStr()+"@"+digest.String(), ci.Name, timeout, pushedNote(o.Pushed))
	case err != nil:
		return c, withPushed(err, o.Pushed)
	}
	return c, nil
}

// DestinationSignatures waits, at every destination at once, for a signature of digest; ci is what
// CISignature found. Destinations still without one after the timeout make one fixable error naming
// them all.
func DestinationSignatures(ctx context.Context, dests []*Registry, digest v1.Hash, ci SignatureCheck, o SignatureOptions) ([]SignatureCheck, error) {
	timeout, interval := orDefault(o.Timeout, 5*time.Minute), orDefault(o.Interval, 5*time.Second)
	checks := make([]SignatureCheck, len(dests))
	errs := make([]error, len(dests))
	var wg sync.WaitGroup
	for i, d := range dests {
		wg.Go(func() {
			checks[i] = SignatureCheck{Registry: d.Name}
			checks[i].Signatures, errs[i] = waitSignature(ctx, d, digest, timeout, interval)
		})
	}
	wg.Wait()
	var lacking, broken []string
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, errTimeout):
			lacking = append(lacking, dests[i].Name)
		default:
			broken = append(broken, fmt.Sprintf("%s (%v)", dests[i].Name, err))
		}
	}
	has := ""
	if len(ci.Signatures) > 0 {
		has = " (" + ci.Registry + " has " + ci.Signatures[0].Digest + ")"
	}
	switch {
	case len(lacking) > 0:
		return checks, fixable.New("--require-signature: %s has no signature of %s after %s%s%s: replicate the signature too (it must be pushed after replication is configured, or use --replication copy)",
			strings.Join(lacking, ", "), digest, timeout, has, pushedNote(o.Pushed))
	case len(broken) > 0:
		err := fmt.Errorf("--require-signature: could not read %s", strings.Join(broken, ", "))
		for _, e := range errs {
			if fixable.Is(e) {
				return checks, fixable.Wrap(e, err.Error())
			}
		}
		return checks, err
	}
	return checks, nil
}

// waitSignature polls r until a signature refers to digest.
func waitSignature(ctx context.Context, r *Registry, digest v1.Hash, timeout, interval time.Duration) ([]Artifact, error) {
	var sigs []Artifact
	err := poll(ctx, timeout, interval, func() (bool, error) {
		all, err := r.Referrers(ctx, digest)
		if err != nil {
			return false, err
		}
		sigs = sigs[:0]
		for _, a := range all {
			if a.Kind == Signature && a.Subject == digest.String() {
				sigs = append(sigs, a)
			}
		}
		return len(sigs) > 0, nil
	})
	return sigs, err
}

// waitManagedSigning follows DescribeImageSigningStatus until no profile is IN_PROGRESS. No status at
// all means no managed-signing rule matched the repository: nothing to wait for.
func waitManagedSigning(ctx context.Context, ci *Registry, digest v1.Hash, timeout, interval time.Duration) ([]SigningStatus, error) {
	in := &ecr.DescribeImageSigningStatusInput{RepositoryName: aws.String(ci.Repo.RepositoryStr()),
		ImageId: &ecrtypes.ImageIdentifier{ImageDigest: aws.String(digest.String())}}
	if ci.RegistryID != "" {
		in.RegistryId = aws.String(ci.RegistryID)
	}
	var st []SigningStatus
	err := poll(ctx, timeout, interval, func() (bool, error) {
		out, err := ci.API.DescribeImageSigningStatus(ctx, in)
		if err != nil {
			switch ecrx.Code(err) {
			case "UnknownOperationException", "AccessDeniedException":
				// A region without managed signing, or a role that may not read its status: the
				// signature referrer alone decides (a FAILED signing then shows as no signature).
				return true, nil
			}
			return false, ecrx.APIError(err, "DescribeImageSigningStatus "+ci.Repo.RepositoryStr()+"@"+digest.String())
		}
		st = st[:0]
		pending := false
		for _, s := range out.SigningStatuses {
			st = append(st, SigningStatus{Profile: aws.ToString(s.SigningProfileArn), Status: string(s.Status),
				FailureCode: aws.ToString(s.FailureCode), FailureReason: aws.ToString(s.FailureReason)})
			pending = pending || s.Status == ecrtypes.SigningStatusInProgress
		}
		return !pending, nil
	})
	if errors.Is(err, errTimeout) {
		return st, fixable.New("--require-signature: ECR managed signing of %s is still IN_PROGRESS after %s (profiles %s)", digest, timeout, profiles(st))
	}
	if err != nil {
		return st, err
	}
	for _, s := range st {
		if s.Status == string(ecrtypes.SigningStatusFailed) {
			return st, fixable.New("--require-signature: ECR managed signing of %s FAILED with profile %s: %s: %s: fix the signing profile or give the pushing role signer:SignPayload on it",
				digest, s.Profile, s.FailureCode, s.FailureReason)
		}
	}
	return st, nil
}

func profiles(st []SigningStatus) string {
	var p []string
	for _, s := range st {
		p = append(p, s.Profile)
	}
	return strings.Join(p, ", ")
}

func pushedNote(pushed string) string {
	if pushed == "" {
		return ""
	}
	return " (the image is pushed: " + pushed + ")"
}

// withPushed adds what is written to a fixable error's line.
func withPushed(err error, pushed string) error {
	if pushed == "" || !fixable.Is(err) {
		return err
	}
	return fixable.Wrap(err, err.Error()+pushedNote(pushed))
}
