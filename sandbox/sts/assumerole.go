package sts

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ecrpush/ecrpush/internal/iam"
	"github.com/ecrpush/ecrpush/sandbox/world"
)

const actionAssumeRole = "sts:AssumeRole"

var externalIDPattern = regexp.MustCompile(`^[\w+=,.@:/-]*$`)

// assumeRole is signed. The caller needs both sides: the target role's trust policy must
// allow the caller, and the caller's identity policies must allow sts:AssumeRole on the role.
// As in IAM, the identity side is waived only within one account when the trust policy names
// the caller's own ARN; across accounts both are always required. A Policy parameter (session
// policy) is accepted and ignored.
func (s *Server) assumeRole(_ context.Context, r *request) (any, *apiError) {
	caller, aerr := s.authenticate(r)
	if aerr != nil {
		return nil, aerr
	}
	var v violations
	c := validateCommon(r, &v)
	externalID, hasExternalID := r.param("ExternalId")
	if hasExternalID {
		if n := utf8.RuneCountInString(externalID); n < 2 {
			v.add("externalId", externalID, false, "Member must have length greater than or equal to 2")
		} else if n > 1224 {
			v.add("externalId", externalID, false, "Member must have length less than or equal to 1224")
		}
		if !externalIDPattern.MatchString(externalID) {
			v.add("externalId", externalID, false, `Member must satisfy regular expression pattern: [\w+=,.@:\/-]*`)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkARN(c.roleARN); err != nil {
		return nil, err
	}
	denied := errAccessDenied("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller.ARN(), c.roleARN)
	role, ok := s.world.Role(c.roleARN)
	if !ok {
		return nil, denied
	}
	principal := caller.Principal()
	ctx := callerContext(caller)
	ctx["sts:RoleSessionName"] = []string{c.sessionName}
	if hasExternalID {
		ctx["sts:ExternalId"] = []string{externalID}
	}
	req := iam.Request{Principal: principal, Action: actionAssumeRole, Resource: role.ARN(), Context: ctx}
	if role.Trust == nil || !iam.Allowed(req, role.Trust) {
		return nil, denied
	}
	identity := iam.Request{Action: actionAssumeRole, Resource: role.ARN(), Context: ctx}
	switch decide(identity, caller.Policies()) {
	case iam.ExplicitDeny:
		return nil, denied
	case iam.ImplicitDeny:
		if caller.Account != role.Account || !trustNames(role.Trust, principal.ID) {
			return nil, denied
		}
	}
	chained := caller.Role != nil
	d, aerr := sessionDuration(s.world, role, c.duration, chained)
	if aerr != nil {
		return nil, aerr
	}
	sess := s.world.Issue(role, c.sessionName, d, chained)
	s.log.Info("sts issued role session", "caller", caller.ARN(), "role", role.ARN(), "session", c.sessionName,
		"chained", chained, "expiration", sess.Expiration)
	return assumeRoleResponse{
		Xmlns:    namespace,
		Result:   assumeRoleResult{AssumedRoleUser: assumedRoleUserOf(sess), Credentials: credentialsOf(sess)},
		Metadata: responseMetadata{RequestID: r.id},
	}, nil
}

// callerContext is the global condition keys AWS puts in the request context for a signed caller.
func callerContext(caller *world.Session) map[string][]string {
	p := caller.Principal()
	ctx := map[string][]string{
		"aws:PrincipalArn":     {p.ID},
		"aws:PrincipalAccount": {caller.Account},
		"aws:userid":           {caller.UserID()},
	}
	if caller.User != nil {
		ctx["aws:PrincipalType"] = []string{"User"}
		ctx["aws:username"] = []string{caller.User.Name}
	} else {
		ctx["aws:PrincipalType"] = []string{"AssumedRole"}
	}
	if caller.Provider != "" {
		ctx["aws:FederatedProvider"] = []string{caller.Provider}
	}
	return ctx
}

// decide evaluates identity policies together: any explicit Deny wins, then any Allow.
func decide(r iam.Request, policies []*iam.Policy) iam.Decision {
	d := iam.ImplicitDeny
	for _, p := range policies {
		if p == nil {
			continue
		}
		switch p.Evaluate(r) {
		case iam.ExplicitDeny:
			return iam.ExplicitDeny
		case iam.Allow:
			d = iam.Allow
		}
	}
	return d
}

// trustNames reports whether an Allow statement of trust names arn itself as an AWS
// principal (not the account root, not a wildcard): only then does IAM grant a same-account
// caller without an identity policy.
func trustNames(trust *iam.Policy, arn string) bool {
	for _, st := range trust.Statement {
		if st.Effect == "Allow" && slices.Contains(st.Principal["AWS"], arn) &&
			slices.ContainsFunc(st.Action, namesAssumeRole) {
			return true
		}
	}
	return false
}

func namesAssumeRole(action string) bool {
	return strings.EqualFold(action, actionAssumeRole) || strings.EqualFold(action, "sts:*") || action == "*"
}
