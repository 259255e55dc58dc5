package sts

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ecrpush/ecrpush/internal/iam"
	"github.com/ecrpush/ecrpush/sandbox/oidc"
	"github.com/ecrpush/ecrpush/sandbox/world"
)

const actionWebIdentity = "sts:AssumeRoleWithWebIdentity"

// identity is what a verified web identity token says, in the terms AWS evaluates.
type identity struct {
	provider  *Provider
	subject   string
	audience  string // the Audience AWS reports and the value of <provider>:aud
	principal iam.Principal
	context   map[string][]string
	issuer    string // the Provider AWS reports: the IAM OIDC provider ARN, or the built-in name
}

// assumeRoleWithWebIdentity is unsigned: the token is the credential. The order of checks
// follows AWS: model constraints, ARN shape, the token (issuer, signature, expiry, audience),
// then the role and its trust policy, then the session duration.
func (s *Server) assumeRoleWithWebIdentity(ctx context.Context, r *request) (any, *apiError) {
	var v violations
	c := validateCommon(r, &v)
	token, ok := r.param("WebIdentityToken")
	switch n := utf8.RuneCountInString(token); {
	case !ok:
		v.null("webIdentityToken")
	case n < 4:
		v.add("webIdentityToken", "", true, "Member must have length greater than or equal to 4")
	case n > 20000:
		v.add("webIdentityToken", "", true, "Member must have length less than or equal to 20000")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkARN(c.roleARN); err != nil {
		return nil, err
	}
	// The role's account owns the IAM OIDC provider the token is checked against.
	account := roleARNPattern.FindStringSubmatch(c.roleARN)[1]
	id, aerr := s.verifyToken(ctx, token, account)
	if aerr != nil {
		return nil, aerr
	}
	role, ok := s.world.Role(c.roleARN)
	if !ok {
		// AWS does not reveal whether the role exists.
		return nil, errAccessDenied(msgNotAuthorizedWI)
	}
	id.context["sts:RoleSessionName"] = []string{c.sessionName}
	req := iam.Request{Principal: &id.principal, Action: actionWebIdentity, Resource: role.ARN(), Context: id.context}
	if role.Trust == nil || !iam.Allowed(req, role.Trust) {
		return nil, errAccessDenied(msgNotAuthorizedWI)
	}
	d, aerr := sessionDuration(s.world, role, c.duration, false)
	if aerr != nil {
		return nil, aerr
	}
	// The web identity is recorded before the session is published, so no reader sees it half-written.
	sess := s.world.IssueWith(role, c.sessionName, d, false, func(ss *world.Session) {
		ss.Subject, ss.Provider, ss.Audience = id.subject, id.issuer, id.audience
	})
	s.log.Info("sts issued web identity session", "role", role.ARN(), "session", c.sessionName,
		"provider", id.provider.Name, "subject", id.subject, "expiration", sess.Expiration)
	return webIdentityResponse{
		Xmlns: namespace,
		Result: webIdentityResult{
			SubjectFromWebIdentityToken: id.subject,
			Audience:                    id.audience,
			AssumedRoleUser:             assumedRoleUserOf(sess),
			Credentials:                 credentialsOf(sess),
			Provider:                    id.issuer,
		},
		Metadata: responseMetadata{RequestID: r.id},
	}, nil
}

// verifyToken finds the provider for the token's issuer, verifies the token with it and
// builds the principal and condition keys AWS evaluates the trust policy with.
func (s *Server) verifyToken(ctx context.Context, token, account string) (*identity, *apiError) {
	unverified, ok := peek(token)
	if !ok {
		return nil, errInvalidIdentityToken(msgNotJWT)
	}
	iss := stringClaim(unverified, "iss")
	p := s.provider(iss)
	if p == nil {
		return nil, errInvalidIdentityToken("No OpenIDConnect provider found in your account for %s", iss)
	}
	if s.drawKeyFailure() {
		return nil, errInvalidIdentityToken(msgVerificationKey)
	}
	claims, err := s.verifier.Verify(ctx, token)
	if err != nil {
		return nil, s.tokenError(err, unverified)
	}
	if stringClaim(claims, "iss") != p.IssuerURL {
		// The verifier fetched keys from the token's own issuer; it must be the one we selected.
		return nil, errInvalidIdentityToken(msgVerificationKey)
	}
	sub := stringClaim(claims, "sub")
	auds := audiences(claims)
	id := &identity{provider: p, subject: sub}
	if p.BuiltIn {
		// Google's keys (IAM User Guide, "Available keys for OIDC federation"): :aud is the
		// authorized party (azp) when present, :oaud the token's own audience.
		aud := stringClaim(claims, "azp")
		if aud == "" && len(auds) > 0 {
			aud = auds[0]
		}
		id.audience = aud
		id.issuer = p.Name
		id.principal = iam.Principal{Type: "Federated", ID: p.Name}
		id.context = map[string][]string{
			p.Name + ":aud":         {aud},
			p.Name + ":oaud":        auds,
			p.Name + ":sub":         {sub},
			"aws:FederatedProvider": {p.Name},
		}
		return id, nil
	}
	i := slices.IndexFunc(auds, func(a string) bool { return slices.Contains(p.ClientIDs, a) })
	if i < 0 {
		return nil, errInvalidIdentityToken(msgIncorrectAud)
	}
	arn := "arn:aws:iam::" + account + ":oidc-provider/" + p.Name
	id.audience = auds[i]
	id.issuer = arn
	id.principal = iam.Principal{Type: "Federated", ID: arn}
	id.context = map[string][]string{
		p.Name + ":sub":         {sub},
		p.Name + ":aud":         {auds[i]},
		"aws:FederatedProvider": {arn},
	}
	return id, nil
}

// provider returns the provider whose issuer URL is iss. A trailing slash is not
// significant to IAM (the provider URL is stored without it).
func (s *Server) provider(iss string) *Provider {
	if iss == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.providers {
		if strings.TrimSuffix(s.providers[i].IssuerURL, "/") == strings.TrimSuffix(iss, "/") {
			p := s.providers[i]
			return &p
		}
	}
	return nil
}

// tokenError maps a verifier failure to the error STS returns for it.
func (s *Server) tokenError(err error, unverified map[string]any) *apiError {
	switch {
	case errors.Is(err, oidc.ErrExpired):
		exp, _ := numericClaim(unverified, "exp")
		return newError(http.StatusBadRequest, "ExpiredTokenException",
			"Token expired: current date/time %d must be before the expiration date/time %d", s.now().Unix(), exp)
	case errors.Is(err, oidc.ErrIDPCommunication):
		return newError(http.StatusBadRequest, "IDPCommunicationError", msgIDPUnreachable)
	case errors.Is(err, oidc.ErrInvalidToken):
		return errInvalidIdentityToken("%s", invalidTokenMessage(err))
	default:
		s.log.Error("sts token verification failed unexpectedly", "error", err)
		return errInternal()
	}
}

// invalidTokenMessage words an invalid token the way AWS does where AWS's wording is known
// (a key that cannot be found); otherwise it passes on the verifier's reason, which names the
// failed check (signature, algorithm, nbf, ...), capitalised as AWS messages are.
func invalidTokenMessage(err error) string {
	reason := oidc.Reason(err)
	if strings.Contains(reason, "key id") {
		return msgVerificationKey
	}
	if reason == "" {
		return "The web identity token that was passed could not be validated by AWS."
	}
	return strings.ToUpper(reason[:1]) + reason[1:]
}
