package replicate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// ECR's replication limits (PutReplicationConfiguration API reference and service quotas).
const (
	MaxRules              = 10
	MaxRuleDestinations   = 25
	MaxUniqueDestinations = 25
	MaxRuleFilters        = 100
)

// filterRe is the RepositoryFilter.filter pattern from the ECR service model; length 2-256.
var filterRe = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$`)

// ValidatePrefix checks a --replication-prefix the way ECR checks a repository filter. "" means every
// repository (a rule without filters).
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) < 2 || len(prefix) > 256 || !filterRe.MatchString(prefix) {
		return fixable.New("--replication-prefix %q is not an ECR repository filter: 2-256 lowercase letters, digits, '.', '_', '-' and '/' in a repository-name shape (e.g. team/ or team/app)", prefix)
	}
	return nil
}

// Covered reports whether cfg already replicates every repository starting with prefix to d: a rule lists d
// and has no filters or a PREFIX_MATCH filter that prefix starts with.
func Covered(cfg *types.ReplicationConfiguration, prefix string, d Destination) bool {
	if cfg == nil {
		return false
	}
	for _, r := range cfg.Rules {
		if !ruleHas(r, d) {
			continue
		}
		if len(r.RepositoryFilters) == 0 {
			return true
		}
		for _, f := range r.RepositoryFilters {
			if f.FilterType == types.RepositoryFilterTypePrefixMatch && aws.ToString(f.Filter) != "" && strings.HasPrefix(prefix, aws.ToString(f.Filter)) {
				return true
			}
		}
	}
	return false
}

func ruleHas(r types.ReplicationRule, d Destination) bool {
	for _, x := range r.Destinations {
		if aws.ToString(x.RegistryId) == d.Account && aws.ToString(x.Region) == d.Region {
			return true
		}
	}
	return false
}

// exactly reports whether the rule's filters are exactly prefix (no filters for "").
func exactly(r types.ReplicationRule, prefix string) bool {
	if prefix == "" {
		return len(r.RepositoryFilters) == 0
	}
	return len(r.RepositoryFilters) == 1 && aws.ToString(r.RepositoryFilters[0].Filter) == prefix &&
		r.RepositoryFilters[0].FilterType == types.RepositoryFilterTypePrefixMatch
}

// RuleChange says what a merge does to the replication configuration.
type RuleChange struct {
	Kind         string        `json:"kind"`                   // RuleUnchanged, RuleAddFilter, RuleAddDestinations or RuleNew
	Rule         int           `json:"rule,omitempty"`         // 1-based index of the rule changed or added
	Destinations []Destination `json:"destinations,omitempty"` // the destinations that were not covered
	Filters      int           `json:"filters,omitempty"`      // the rule's filters after the change
}

// Kinds of RuleChange.
const (
	RuleUnchanged       = "unchanged"
	RuleAddFilter       = "add-filter"
	RuleAddDestinations = "add-destinations"
	RuleNew             = "new-rule"
)

// Text says the change in words, for plans.
func (c RuleChange) Text(prefix string) string {
	switch c.Kind {
	case RuleAddFilter:
		return fmt.Sprintf("adds the filter %q to rule %d, whose destinations are exactly %s (%d of ECR's %d filters per rule)", prefix, c.Rule, destList(c.Destinations), c.Filters, MaxRuleFilters)
	case RuleAddDestinations:
		return fmt.Sprintf("adds %s to rule %d, whose only filter is %q", destList(c.Destinations), c.Rule, prefix)
	case RuleNew:
		return fmt.Sprintf("adds rule %d: %s to %s (no rule has exactly these destinations; ECR allows %d rules)", c.Rule, describePrefix(prefix), destList(c.Destinations), MaxRules)
	}
	return "already covers every destination"
}

// Merge returns current with every destination replicating repositories that start with prefix. When rules
// already cover prefix for every destination it returns an unchanged copy and false. See MergeRule.
func Merge(current *types.ReplicationConfiguration, prefix string, dests []Destination) (*types.ReplicationConfiguration, bool, error) {
	out, ch, err := MergeRule(current, prefix, dests)
	return out, err == nil && ch.Kind != RuleUnchanged, err
}

// MergeRule merges prefix → dests into current, touching no rule but the one it names: the destinations
// that are not covered yet join, as one more filter, the first rule whose destinations are exactly them
// (ECR allows 100 filters per rule, so many repositories share one rule); else the rule whose only filter is
// prefix gains them (a change that concerns prefix alone); else a new rule is appended (ECR allows 10). A
// result ECR would refuse (limits, filters) is a fixable error.
func MergeRule(current *types.ReplicationConfiguration, prefix string, dests []Destination) (*types.ReplicationConfiguration, RuleChange, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return nil, RuleChange{}, err
	}
	out := CloneConfig(current)
	var missing []Destination
	for _, d := range dests {
		if !Covered(out, prefix, d) && !containsDest(missing, d) {
			missing = append(missing, d)
		}
	}
	ch := RuleChange{Kind: RuleUnchanged, Destinations: missing}
	if len(missing) == 0 {
		return out, ch, nil
	}
	if prefix != "" {
		for i, r := range out.Rules {
			if len(r.RepositoryFilters) > 0 && len(r.RepositoryFilters) < MaxRuleFilters && sameDests(r, missing) {
				out.Rules[i].RepositoryFilters = append(out.Rules[i].RepositoryFilters,
					types.RepositoryFilter{Filter: aws.String(prefix), FilterType: types.RepositoryFilterTypePrefixMatch})
				ch.Kind, ch.Rule, ch.Filters = RuleAddFilter, i+1, len(out.Rules[i].RepositoryFilters)
				return out, ch, Validate(out)
			}
		}
	}
	target := -1
	for i, r := range out.Rules {
		if exactly(r, prefix) {
			target = i
			break
		}
	}
	what := describePrefix(prefix)
	ch.Kind = RuleAddDestinations
	if target < 0 {
		if len(out.Rules) >= MaxRules {
			return nil, RuleChange{}, fixable.New("the ci registry already has %d replication rules, ECR's maximum; none has exactly the destinations %s (to add %s as a filter) or exactly %s: "+
				"make one rule list exactly these destinations, or remove a rule (aws ecr put-replication-configuration), then run again; nothing was written",
				len(out.Rules), destList(missing), what, what)
		}
		r := types.ReplicationRule{}
		if prefix != "" {
			r.RepositoryFilters = []types.RepositoryFilter{{Filter: aws.String(prefix), FilterType: types.RepositoryFilterTypePrefixMatch}}
		}
		out.Rules = append(out.Rules, r)
		target = len(out.Rules) - 1
		ch.Kind = RuleNew
	}
	for _, d := range missing {
		out.Rules[target].Destinations = append(out.Rules[target].Destinations, types.ReplicationDestination{
			Region: aws.String(d.Region), RegistryId: aws.String(d.Account)})
	}
	ch.Rule, ch.Filters = target+1, len(out.Rules[target].RepositoryFilters)
	if err := Validate(out); err != nil {
		return nil, RuleChange{}, err
	}
	return out, ch, nil
}

// sameDests reports whether a rule's destinations are exactly ds, as sets.
func sameDests(r types.ReplicationRule, ds []Destination) bool {
	if len(r.Destinations) != len(ds) {
		return false
	}
	for _, d := range ds {
		if !ruleHas(r, d) {
			return false
		}
	}
	return true
}

func describePrefix(prefix string) string {
	if prefix == "" {
		return "no repository filter"
	}
	return fmt.Sprintf("the filter %q", prefix)
}

func containsDest(ds []Destination, d Destination) bool {
	for _, x := range ds {
		if x.Account == d.Account && x.Region == d.Region {
			return true
		}
	}
	return false
}

func destList(ds []Destination) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.String())
	}
	return strings.Join(s, ", ")
}

// Validate applies ECR's limits to a configuration; the error says what to change and that nothing was written.
func Validate(cfg *types.ReplicationConfiguration) error {
	if cfg == nil {
		return nil
	}
	if len(cfg.Rules) > MaxRules {
		return fixable.New("the replication configuration would have %d rules; ECR allows %d: merge or remove rules; nothing was written", len(cfg.Rules), MaxRules)
	}
	unique := map[string]bool{}
	for i, r := range cfg.Rules {
		n := i + 1
		if len(r.Destinations) == 0 {
			return fixable.New("replication rule %d has no destinations; ECR requires at least one; nothing was written", n)
		}
		if len(r.Destinations) > MaxRuleDestinations {
			return fixable.New("replication rule %d would have %d destinations; ECR allows %d per rule: split the destinations or drop some; nothing was written", n, len(r.Destinations), MaxRuleDestinations)
		}
		inRule := map[string]bool{}
		for _, d := range r.Destinations {
			k := aws.ToString(d.RegistryId) + ":" + aws.ToString(d.Region)
			if inRule[k] {
				return fixable.New("replication rule %d lists %s twice; ECR refuses duplicate destinations; nothing was written", n, k)
			}
			inRule[k], unique[k] = true, true
		}
		if r.RepositoryFilters != nil && len(r.RepositoryFilters) == 0 {
			return fixable.New("replication rule %d has an empty filter list; ECR requires at least one filter or none at all; nothing was written", n)
		}
		if len(r.RepositoryFilters) > MaxRuleFilters {
			return fixable.New("replication rule %d has %d repository filters; ECR allows %d; nothing was written", n, len(r.RepositoryFilters), MaxRuleFilters)
		}
		for _, f := range r.RepositoryFilters {
			if f.FilterType != types.RepositoryFilterTypePrefixMatch {
				return fixable.New("replication rule %d has filter type %q; ECR accepts only PREFIX_MATCH; nothing was written", n, f.FilterType)
			}
			if v := aws.ToString(f.Filter); len(v) < 2 || len(v) > 256 || !filterRe.MatchString(v) {
				return fixable.New("replication rule %d has filter %q, which ECR refuses (2-256 characters of a repository-name prefix); nothing was written", n, v)
			}
		}
	}
	if len(unique) > MaxUniqueDestinations {
		return fixable.New("the replication configuration would name %d distinct destinations; ECR allows %d across all rules; nothing was written", len(unique), MaxUniqueDestinations)
	}
	return nil
}

// CloneConfig deep-copies a configuration, keeping nil and empty lists apart (ECR treats them differently).
// nil becomes an empty configuration.
func CloneConfig(c *types.ReplicationConfiguration) *types.ReplicationConfiguration {
	out := &types.ReplicationConfiguration{Rules: []types.ReplicationRule{}}
	if c == nil {
		return out
	}
	for _, r := range c.Rules {
		nr := types.ReplicationRule{}
		if r.Destinations != nil {
			nr.Destinations = make([]types.ReplicationDestination, 0, len(r.Destinations))
			for _, d := range r.Destinations {
				nr.Destinations = append(nr.Destinations, types.ReplicationDestination{Region: cloneStr(d.Region), RegistryId: cloneStr(d.RegistryId)})
			}
		}
		if r.RepositoryFilters != nil {
			nr.RepositoryFilters = make([]types.RepositoryFilter, 0, len(r.RepositoryFilters))
			for _, f := range r.RepositoryFilters {
				nr.RepositoryFilters = append(nr.RepositoryFilters, types.RepositoryFilter{Filter: cloneStr(f.Filter), FilterType: f.FilterType})
			}
		}
		out.Rules = append(out.Rules, nr)
	}
	return out
}

func cloneStr(p *string) *string {
	if p == nil {
		return nil
	}
	return aws.String(*p)
}

// The configuration as the ECR API and `aws ecr put-replication-configuration --replication-configuration`
// spell it.
type jsonConfig struct {
	Rules []jsonRule `json:"rules"`
}

type jsonRule struct {
	Destinations      []jsonDest   `json:"destinations"`
	RepositoryFilters []jsonFilter `json:"repositoryFilters,omitempty"`
}

type jsonDest struct {
	Region     string `json:"region"`
	RegistryID string `json:"registryId"`
}

type jsonFilter struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

// ConfigJSON is cfg as indented JSON in the API's shape, ending in a newline.
func ConfigJSON(cfg *types.ReplicationConfiguration) []byte {
	jc := jsonConfig{Rules: []jsonRule{}}
	if cfg != nil {
		for _, r := range cfg.Rules {
			jr := jsonRule{Destinations: []jsonDest{}}
			for _, d := range r.Destinations {
				jr.Destinations = append(jr.Destinations, jsonDest{Region: aws.ToString(d.Region), RegistryID: aws.ToString(d.RegistryId)})
			}
			for _, f := range r.RepositoryFilters {
				jr.RepositoryFilters = append(jr.RepositoryFilters, jsonFilter{Filter: aws.ToString(f.Filter), FilterType: string(f.FilterType)})
			}
			jc.Rules = append(jc.Rules, jr)
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	_ = enc.Encode(jc)
	return b.Bytes()
}

// ParseConfigJSON reads a configuration in the API's shape (as ConfigJSON writes it).
func ParseConfigJSON(b []byte) (*types.ReplicationConfiguration, error) {
	var jc jsonConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jc); err != nil {
		return nil, fmt.Errorf("replication configuration: %w", err)
	}
	out := &types.ReplicationConfiguration{Rules: []types.ReplicationRule{}}
	for _, r := range jc.Rules {
		nr := types.ReplicationRule{Destinations: []types.ReplicationDestination{}}
		for _, d := range r.Destinations {
			nr.Destinations = append(nr.Destinations, types.ReplicationDestination{Region: aws.String(d.Region), RegistryId: aws.String(d.RegistryID)})
		}
		for _, f := range r.RepositoryFilters {
			nr.RepositoryFilters = append(nr.RepositoryFilters, types.RepositoryFilter{Filter: aws.String(f.Filter), FilterType: types.RepositoryFilterType(f.FilterType)})
		}
		out.Rules = append(out.Rules, nr)
	}
	return out, nil
}

// SameConfig compares two configurations rule by rule, in order.
func SameConfig(a, b *types.ReplicationConfiguration) bool {
	return bytes.Equal(ConfigJSON(a), ConfigJSON(b))
}

// DestinationsFor lists the destinations cfg's rules replicate repo to, in configuration order.
func DestinationsFor(cfg *types.ReplicationConfiguration, repo string) []Destination {
	var out []Destination
	if cfg == nil {
		return nil
	}
	for _, r := range cfg.Rules {
		match := len(r.RepositoryFilters) == 0
		for _, f := range r.RepositoryFilters {
			if f.FilterType == types.RepositoryFilterTypePrefixMatch && strings.HasPrefix(repo, aws.ToString(f.Filter)) {
				match = true
			}
		}
		if !match {
			continue
		}
		for _, x := range r.Destinations {
			d := Destination{Account: aws.ToString(x.RegistryId), Region: aws.ToString(x.Region)}
			if !containsDest(out, d) {
				out = append(out, d)
			}
		}
	}
	return out
}
