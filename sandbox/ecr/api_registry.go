package ecr

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/ecrpush/ecrpush/internal/iam"
)

type authorizationData struct {
	AuthorizationToken string    `json:"authorizationToken"`
	ExpiresAt          epochTime `json:"expiresAt"`
	ProxyEndpoint      string    `json:"proxyEndpoint"`
}

// GetAuthorizationToken issues a registry password for the caller, valid in the signed region
// for TokenTTL, never beyond the caller's own credentials.
func opGetAuthorizationToken(c *call) (any, *apiError) {
	var in struct {
		RegistryIDs []string `json:"registryIds"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.RegistryIDs != nil && (len(in.RegistryIDs) < 1 || len(in.RegistryIDs) > 10) {
		return nil, invalidParam("registryIds", "Member must have length between 1 and 10")
	}
	for i, id := range in.RegistryIDs {
		if aerr := validateRegistryID(fmt.Sprintf("registryIds.%d.member", i+1), id); aerr != nil {
			return nil, aerr
		}
	}
	if aerr := c.authorize(c.action(), "*"); aerr != nil {
		return nil, aerr
	}
	ids := in.RegistryIDs
	if len(ids) == 0 {
		ids = []string{c.sess.Account}
	}
	regs := make([]*registry, 0, len(ids))
	for _, id := range ids {
		rg, aerr := c.registryFor(id)
		if aerr != nil {
			return nil, aerr
		}
		regs = append(regs, rg)
	}
	expires := c.s.now().Add(c.s.o.TokenTTL)
	reported := expires
	if c.sess.SessionToken != "" && c.sess.Expiration.Before(expires) {
		expires = c.sess.Expiration
		if !c.s.o.ReportTokenTTL {
			reported = expires
		}
	}
	pass := c.s.tokens.issue(c.sess, c.region, expires)
	tok := base64.StdEncoding.EncodeToString([]byte("AWS:" + pass))
	out := make([]authorizationData, 0, len(regs))
	for _, rg := range regs {
		out = append(out, authorizationData{AuthorizationToken: tok, ExpiresAt: epochTime(reported), ProxyEndpoint: rg.proxyEndpoint()})
	}
	return map[string]any{"authorizationData": out}, nil
}

func opDescribeRegistry(c *call) (any, *apiError) {
	var in struct{}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	rg, aerr := c.ownRegistry()
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{"registryId": rg.id.Account, "replicationConfiguration": rg.replicationConfig()}, nil
}

func opPutReplicationConfiguration(c *call) (any, *apiError) {
	var in struct {
		ReplicationConfiguration *ReplicationConfiguration `json:"replicationConfiguration"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.ReplicationConfiguration == nil {
		return nil, invalidParam("replicationConfiguration", "Member must not be null")
	}
	rg, aerr := c.ownRegistry()
	if aerr != nil {
		return nil, aerr
	}
	cfg := *in.ReplicationConfiguration
	if aerr := validateReplication(&cfg, rg.id); aerr != nil {
		return nil, aerr
	}
	rg.setReplication(cfg)
	return map[string]any{"replicationConfiguration": rg.replicationConfig()}, nil
}

// registryPolicy is the caller's registry and its policy text, or RegistryPolicyNotFoundException:
// what GetRegistryPolicy returns and DeleteRegistryPolicy removes.
func registryPolicy(c *call) (*registry, string, *apiError) {
	var in struct{}
	if aerr := c.decode(&in); aerr != nil {
		return nil, "", aerr
	}
	rg, aerr := c.ownRegistry()
	if aerr != nil {
		return nil, "", aerr
	}
	_, text, ok := c.s.w.RegistryPolicy(rg.id.Account, rg.id.Region)
	if !ok {
		return nil, "", newAPIError(excRegistryPolicyNotFound, "Registry policy does not exist in the registry with id '%s'", rg.id.Account)
	}
	return rg, text, nil
}

func opGetRegistryPolicy(c *call) (any, *apiError) {
	rg, text, aerr := registryPolicy(c)
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{"registryId": rg.id.Account, "policyText": text}, nil
}

func opDeleteRegistryPolicy(c *call) (any, *apiError) {
	rg, text, aerr := registryPolicy(c)
	if aerr != nil {
		return nil, aerr
	}
	if err := c.s.w.SetRegistryPolicy(rg.id.Account, rg.id.Region, ""); err != nil {
		return nil, &apiError{Status: 500, Type: excServer, Message: err.Error()}
	}
	return map[string]any{"registryId": rg.id.Account, "policyText": text}, nil
}

// registryPolicyActions are the only actions ECR enforces (and accepts) in a registry policy.
var registryPolicyActions = map[string]bool{
	"ecr:replicateimage": true, "ecr:batchimportupstreamimage": true, "ecr:createrepository": true, "ecr:*": true,
}

func opPutRegistryPolicy(c *call) (any, *apiError) {
	var in struct {
		PolicyText *string `json:"policyText"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.PolicyText == nil {
		return nil, invalidParam("policyText", "Member must not be null")
	}
	if len(*in.PolicyText) > 10240 {
		return nil, invalidParam("policyText", "Member must have length less than or equal to 10240")
	}
	rg, aerr := c.ownRegistry()
	if aerr != nil {
		return nil, aerr
	}
	if !validRegistryPolicy(*in.PolicyText) {
		return nil, invalidParam("PolicyText", "Invalid registry policy provided")
	}
	if err := c.s.w.SetRegistryPolicy(rg.id.Account, rg.id.Region, *in.PolicyText); err != nil {
		return nil, invalidParam("PolicyText", "Invalid registry policy provided")
	}
	return map[string]any{"registryId": rg.id.Account, "policyText": *in.PolicyText}, nil
}

// validRegistryPolicy parses the document and applies ECR's registry-policy rules: every
// statement names a principal and only the registry-level actions.
func validRegistryPolicy(text string) bool {
	p, err := iam.Parse([]byte(text))
	if err != nil || len(p.Statement) == 0 {
		return false
	}
	for _, st := range p.Statement {
		if len(st.Principal) == 0 || len(st.NotAction) > 0 || len(st.Action) == 0 {
			return false
		}
		for _, a := range st.Action {
			if !registryPolicyActions[strings.ToLower(a)] {
				return false
			}
		}
	}
	return true
}
