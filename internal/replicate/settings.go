package replicate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	ecrx "github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/push"
)

// RepositorySettings are the settings of repositories created on the user's behalf: copy-mode
// destinations (CreateRepository, then PutLifecyclePolicy) and, in native mode, the repositories ECR
// replication creates, through a repository creation template in each destination registry. The
// caller fills it from push's flags; DefaultSettings is what push does without them.
type RepositorySettings struct {
	// Create lets copy mode create a missing destination repository (--create-repository).
	Create bool
	// TagImmutability makes new repositories IMMUTABLE (--tag-immutability).
	TagImmutability bool
	// ScanOnPush turns on basic scanning of new copy-mode repositories (--scan-on-push). Creation
	// templates have no scanning setting: natively replicated repositories follow the destination
	// registry's scanning configuration.
	ScanOnPush bool
	// KMSKey encrypts new repositories with KMS (--kms-key: an ARN, key ID or alias). A key lives in
	// one account and region, so a destination elsewhere gets DestinationKMSKeys' key, or the same
	// alias there, or ECR's AWS managed key (KMSFor says which).
	KMSKey string
	// DestinationKMSKeys names the key per destination, "ACCOUNT:REGION" → key ARN.
	DestinationKMSKeys map[string]string
	// LifecyclePolicy is the lifecycle policy JSON for new repositories (--lifecycle-policy FILE).
	LifecyclePolicy string
	// Tags are the resource tags of new repositories (--repository-tags K=V,…).
	Tags []Tag
	// TemplateRoleName is the IAM role, in every destination account, that ECR assumes to apply a
	// creation template with a KMS key or tags (the template's customRoleArn; --template-role-name).
	TemplateRoleName string
}

// Tag is one resource tag.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// DefaultSettings are push's defaults: create missing repositories, mutable tags, scan on push,
// AES256.
func DefaultSettings() RepositorySettings { return RepositorySettings{Create: true, ScanOnPush: true} }

// ECR's limits on these settings (CreateRepository, PutLifecyclePolicy, TagResource, the template
// shapes in the API reference).
const (
	MaxLifecyclePolicy = 30720
	MaxTags            = 50
)

var (
	kmsARNRe   = regexp.MustCompile(`^arn:(aws[a-z-]*):kms:([a-z0-9-]+):([0-9]{12}):(key|alias)/(.+)$`)
	kmsIDRe    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$|^mrk-[0-9a-f]{32}$`)
	aliasRe    = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]{1,250}$`)
	roleNameRe = regexp.MustCompile(`^(/[\x21-\x7e]*/)?[\w+=,.@-]{1,64}$`)
)

// ParseTags reads --repository-tags: KEY=VALUE pairs, comma-separated or repeated.
func ParseTags(specs []string) ([]Tag, error) {
	var out []Tag
	seen := map[string]bool{}
	for _, spec := range specs {
		for _, p := range strings.Split(spec, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			k, v, ok := strings.Cut(p, "=")
			if !ok {
				return nil, fixable.New("--repository-tags %q: use KEY=VALUE (comma-separated)", p)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if seen[k] {
				return nil, fixable.New("--repository-tags names %q twice", k)
			}
			seen[k] = true
			out = append(out, Tag{Key: k, Value: v})
		}
	}
	return out, nil
}

// ParseLifecyclePolicy checks the text of --lifecycle-policy FILE the way ECR would read it: JSON with a
// non-empty "rules" list whose rules have rulePriority, selection and action, within ECR's 30,720
// characters. It returns the text compacted (as the API stores it).
func ParseLifecyclePolicy(text []byte) (string, error) {
	var doc struct {
		Rules []map[string]json.RawMessage `json:"rules"`
	}
	if err := json.Unmarshal(text, &doc); err != nil {
		return "", fixable.New("--lifecycle-policy is not JSON (%v): write an ECR lifecycle policy, {\"rules\":[...]}", err)
	}
	if len(doc.Rules) == 0 {
		return "", fixable.New("--lifecycle-policy has no rules: an ECR lifecycle policy is {\"rules\":[{\"rulePriority\":1,\"selection\":{...},\"action\":{\"type\":\"expire\"}}]}")
	}
	for i, r := range doc.Rules {
		for _, k := range []string{"rulePriority", "selection", "action"} {
			if _, ok := r[k]; !ok {
				return "", fixable.New("--lifecycle-policy rule %d has no %q (every rule needs rulePriority, selection and action)", i+1, k)
			}
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, text); err != nil {
		return "", fixable.New("--lifecycle-policy: %v", err)
	}
	if compact.Len() > MaxLifecyclePolicy {
		return "", fixable.New("--lifecycle-policy is %d characters; ECR allows %d", compact.Len(), MaxLifecyclePolicy)
	}
	return compact.String(), nil
}

// Validate applies ECR's rules to the settings; the error is fixable and names the flag.
func (s RepositorySettings) Validate() error {
	if s.KMSKey != "" && !kmsARNRe.MatchString(s.KMSKey) && !kmsIDRe.MatchString(s.KMSKey) && !aliasRe.MatchString(s.KMSKey) {
		return fixable.New("--kms-key %q is not a KMS key ARN, key ID or alias/NAME", s.KMSKey)
	}
	for k, v := range s.DestinationKMSKeys {
		if !kmsARNRe.MatchString(v) {
			return fixable.New("the KMS key for %s (%q) must be a full key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)", k, v)
		}
		if m := kmsARNRe.FindStringSubmatch(v); !strings.HasSuffix(k, ":"+m[2]) {
			return fixable.New("the KMS key for %s is in region %s: a repository's key must be in the repository's region", k, m[2])
		}
	}
	if s.LifecyclePolicy != "" {
		if _, err := ParseLifecyclePolicy([]byte(s.LifecyclePolicy)); err != nil {
			return err
		}
	}
	if len(s.Tags) > MaxTags {
		return fixable.New("--repository-tags names %d tags; ECR allows %d per repository", len(s.Tags), MaxTags)
	}
	for _, t := range s.Tags {
		switch {
		case len(t.Key) < 1 || len(t.Key) > 128:
			return fixable.New("--repository-tags key %q: 1 to 128 characters", t.Key)
		case len(t.Value) > 256:
			return fixable.New("--repository-tags value of %q: at most 256 characters", t.Key)
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return fixable.New("--repository-tags key %q: keys starting with aws: are reserved", t.Key)
		}
	}
	if s.TemplateRoleName != "" && !roleNameRe.MatchString(s.TemplateRoleName) {
		return fixable.New("--template-role-name %q is not an IAM role name", s.TemplateRoleName)
	}
	return nil
}

// wantsTemplate reports whether the settings differ from what replication gives a new repository
// without a creation template (MUTABLE, AES256, no lifecycle policy, no tags).
func (s RepositorySettings) wantsTemplate() bool {
	return s.TagImmutability || s.KMSKey != "" || len(s.DestinationKMSKeys) > 0 || s.LifecyclePolicy != "" || len(s.Tags) > 0
}

// KMSChoice is the key a destination's new repositories are encrypted with.
type KMSChoice struct {
	Key  string // for CreateRepository: an ARN, or an alias resolved in the destination ("" = AWS managed key)
	ARN  string // for a creation template, which needs a full ARN ("" = AWS managed key)
	Note string // why a destination does not get KMSKey itself ("" when it does)
}

// KMSFor picks d's KMS key: DestinationKMSKeys[d], else KMSKey when it is an ARN in d's account and
// region (a key lives in one account and region), else the same alias in d's account and region,
// else ECR's AWS managed key (aws/ecr), with a note saying so. Without KMSKey: no KMS.
func (s RepositorySettings) KMSFor(d Destination) (KMSChoice, bool) {
	if k, ok := s.DestinationKMSKeys[d.String()]; ok {
		return KMSChoice{Key: k, ARN: k}, true
	}
	if s.KMSKey == "" {
		return KMSChoice{}, len(s.DestinationKMSKeys) > 0
	}
	if m := kmsARNRe.FindStringSubmatch(s.KMSKey); m != nil {
		if m[2] == d.Region && m[3] == d.Account {
			return KMSChoice{Key: s.KMSKey, ARN: s.KMSKey}, true
		}
		if m[4] == "alias" {
			arn := fmt.Sprintf("arn:%s:kms:%s:%s:alias/%s", ecrx.PartitionOf(d.Region), d.Region, d.Account, m[5])
			return KMSChoice{Key: "alias/" + m[5], ARN: arn, Note: "the same alias in " + d.String()}, true
		}
		return KMSChoice{Note: fmt.Sprintf("%s is a key of %s:%s; %s gets the AWS managed key aws/ecr (name one with --replication-kms-key ACCOUNT:REGION=ARN)", s.KMSKey, m[3], m[2], d)}, true
	}
	if aliasRe.MatchString(s.KMSKey) {
		arn := fmt.Sprintf("arn:%s:kms:%s:%s:%s", ecrx.PartitionOf(d.Region), d.Region, d.Account, s.KMSKey)
		return KMSChoice{Key: s.KMSKey, ARN: arn, Note: "the same alias in " + d.String()}, true
	}
	return KMSChoice{Note: fmt.Sprintf("key ID %s names a key of the ci account and region; %s gets the AWS managed key aws/ecr (name one with --replication-kms-key ACCOUNT:REGION=ARN)", s.KMSKey, d)}, true
}

// PushOptions are the push options that create d's repository with these settings (copy mode).
func (s RepositorySettings) PushOptions(d Destination) []push.Option {
	opts := []push.Option{push.WithCreateRepository(s.Create), push.WithTagImmutability(s.TagImmutability), push.WithScanOnPush(s.ScanOnPush)}
	if k, ok := s.KMSFor(d); ok {
		key := k.Key
		if key == "" {
			// The AWS managed key: push has no option for KMS without a key, so name the alias.
			key = "alias/aws/ecr"
		}
		opts = append(opts, push.WithKMSKey(key))
	}
	return opts
}

// templateRoleARN is the customRoleArn for d's template ("" without TemplateRoleName).
func (s RepositorySettings) templateRoleARN(d Destination) string {
	if s.TemplateRoleName == "" {
		return ""
	}
	name := strings.Trim(s.TemplateRoleName, "/")
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", ecrx.PartitionOf(d.Region), d.Account, name)
}

// Describe is the settings in one line, for plans and logs.
func (s RepositorySettings) Describe() string {
	var p []string
	if s.TagImmutability {
		p = append(p, "IMMUTABLE")
	} else {
		p = append(p, "MUTABLE")
	}
	if s.KMSKey != "" {
		p = append(p, "KMS "+s.KMSKey)
	} else {
		p = append(p, "AES256")
	}
	if s.LifecyclePolicy != "" {
		p = append(p, "lifecycle policy")
	}
	if len(s.Tags) > 0 {
		var ks []string
		for _, t := range s.Tags {
			ks = append(ks, t.Key+"="+t.Value)
		}
		sort.Strings(ks)
		p = append(p, "tags "+strings.Join(ks, ","))
	}
	return strings.Join(p, ", ")
}

// TemplatePrefix is the creation-template prefix covering every repository a replication filter
// prefix matches. ECR assumes a "/" after a template prefix (prod covers prod/…, not prod), so it is
// the filter's directory: "team/app" and "team/" → "team", "team/app/x" → "team/app"; a filter with
// no "/" (or none at all) can only be covered by ROOT.
func TemplatePrefix(filter string) string {
	f := strings.TrimSuffix(filter, "/")
	if strings.HasSuffix(filter, "/") && f != "" {
		return f
	}
	if i := strings.LastIndex(f, "/"); i > 0 {
		return f[:i]
	}
	return "ROOT"
}
