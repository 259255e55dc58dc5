package ecr

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"time"
)

// Managed signing (PutSigningConfiguration, GetSigningConfiguration, DeleteSigningConfiguration,
// DescribeImageSigningStatus): a registry's signing rules name AWS Signer profiles and optional
// WILDCARD_MATCH repository filters; an image pushed to a matching repository is signed once per
// matching profile and the signature is stored as an OCI referrer of the image. The sandbox holds no
// key: its "signature" is a Notary Project-shaped envelope whose signature bytes are a hash, enough
// for tools that look for a signature referrer, never for a verifier. Sources in doc.go.

// Notary Project signature media types (notaryproject/specifications, signature-specification.md).
const (
	ArtifactTypeNotarySignature = "application/vnd.cncf.notary.signature"
	mtJOSE                      = "application/jose+json"
	mtOCIEmpty                  = "application/vnd.oci.empty.v1+json"
)

// SigningConfiguration is a registry's managed-signing configuration.
type SigningConfiguration struct {
	Rules []SigningRule `json:"rules"`
}

// SigningRule signs images of matching repositories with one Signer profile.
type SigningRule struct {
	SigningProfileArn string                    `json:"signingProfileArn"`
	RepositoryFilters []SigningRepositoryFilter `json:"repositoryFilters,omitempty"`
}

// SigningRepositoryFilter matches repository names (WILDCARD_MATCH: * is any sequence).
type SigningRepositoryFilter struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

// ImageSigningStatus is one profile's signing state for an image.
type ImageSigningStatus struct {
	SigningProfileArn string `json:"signingProfileArn,omitempty"`
	Status            string `json:"status"`
	FailureCode       string `json:"failureCode,omitempty"`
	FailureReason     string `json:"failureReason,omitempty"`
}

var (
	signingProfilePattern = regexp.MustCompile(`^arn:aws(-[a-z]+)*:signer:[a-z0-9-]+:[0-9]{12}:/signing-profiles/[a-zA-Z0-9_]{2,}$`)
	signingFilterPattern  = regexp.MustCompile(`^(?:[a-z0-9*]+(?:[._-][a-z0-9*]+)*/)*[a-z0-9*]+(?:[._-][a-z0-9*]+)*$`)
)

const excSigningConfigNotFound = "SigningConfigurationNotFoundException"

// validateSigning applies the model's constraints (ARN pattern, filter pattern and lengths) and the
// user guide's limits (10 rules per registry, 100 filters per rule).
func validateSigning(cfg *SigningConfiguration) *apiError {
	if cfg.Rules == nil {
		return invalidParam("signingConfiguration.rules", "Member must not be null")
	}
	if len(cfg.Rules) > 10 {
		return invalidParam("signingConfiguration.rules", "Member must have length less than or equal to 10")
	}
	for i, r := range cfg.Rules {
		f := fmt.Sprintf("signingConfiguration.rules.%d.member", i+1)
		if len(r.SigningProfileArn) > 200 || !signingProfilePattern.MatchString(r.SigningProfileArn) {
			return invalidParam(f+".signingProfileArn", "Member must satisfy regular expression pattern: "+signingProfilePattern.String())
		}
		if r.RepositoryFilters != nil && (len(r.RepositoryFilters) < 1 || len(r.RepositoryFilters) > 100) {
			return invalidParam(f+".repositoryFilters", "Member must have length between 1 and 100")
		}
		for j, rf := range r.RepositoryFilters {
			ff := fmt.Sprintf("%s.repositoryFilters.%d.member", f, j+1)
			if rf.FilterType != "WILDCARD_MATCH" {
				return invalidParam(ff+".filterType", "Member must satisfy enum value set: [WILDCARD_MATCH]")
			}
			if len(rf.Filter) < 1 || len(rf.Filter) > 256 || !signingFilterPattern.MatchString(rf.Filter) {
				return invalidParam(ff+".filter", "Member must satisfy regular expression pattern: "+signingFilterPattern.String())
			}
		}
	}
	return nil
}

// SetSigningConfiguration is PutSigningConfiguration without the API (sandbox set-up and tests).
func (s *Service) SetSigningConfiguration(id RegistryID, cfg SigningConfiguration) error {
	if _, ok := s.registry(id); !ok {
		return fmt.Errorf("ecr: no registry %s", id)
	}
	if aerr := validateSigning(&cfg); aerr != nil {
		return aerr
	}
	s.sc.mu.Lock()
	defer s.sc.mu.Unlock()
	if s.sc.signing == nil {
		s.sc.signing = map[RegistryID]SigningConfiguration{}
	}
	s.sc.signing[id] = cfg
	return nil
}

func (s *Service) signingConfig(id RegistryID) (SigningConfiguration, bool) {
	s.sc.mu.Lock()
	defer s.sc.mu.Unlock()
	cfg, ok := s.sc.signing[id]
	return cfg, ok
}

// profilesFor lists the distinct profiles whose rule matches repo, in rule order (a rule without
// filters matches every repository).
func profilesFor(cfg SigningConfiguration, repo string) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		match := len(r.RepositoryFilters) == 0
		for _, f := range r.RepositoryFilters {
			if f.FilterType == "WILDCARD_MATCH" && wildcardMatch(f.Filter, repo) {
				match = true
				break
			}
		}
		if match && !seen[r.SigningProfileArn] {
			seen[r.SigningProfileArn] = true
			out = append(out, r.SigningProfileArn)
		}
	}
	return out
}

// startSigning records IN_PROGRESS for every matching profile not yet signing this image, then signs
// (at once, or after the configured delay).
func (s *Service) startSigning(rg *registry, repo string, img *image) {
	cfg, ok := s.signingConfig(rg.id)
	if !ok {
		return
	}
	key := imageKey(rg.id, repo, img.digest)
	var todo []string
	s.sc.mu.Lock()
	if s.sc.signState == nil {
		s.sc.signState = map[string][]ImageSigningStatus{}
	}
	have := map[string]bool{}
	for _, st := range s.sc.signState[key] {
		have[st.SigningProfileArn] = true
	}
	for _, p := range profilesFor(cfg, repo) {
		if !have[p] {
			todo = append(todo, p)
			s.sc.signState[key] = append(s.sc.signState[key], ImageSigningStatus{SigningProfileArn: p, Status: StatusInProgress})
		}
	}
	delay := s.sc.signingDelay
	s.sc.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	sign := func() {
		for _, p := range todo {
			s.setSigningStatus(key, s.sign(rg, repo, img, p))
		}
	}
	if delay == 0 {
		sign()
		return
	}
	time.AfterFunc(delay, func() {
		if s.repl.ctx.Err() != nil { // the service closed meanwhile
			return
		}
		sign()
	})
}

func (s *Service) setSigningStatus(key string, st ImageSigningStatus) {
	s.sc.mu.Lock()
	defer s.sc.mu.Unlock()
	list := s.sc.signState[key]
	for i := range list {
		if list[i].SigningProfileArn == st.SigningProfileArn {
			list[i] = st
		}
	}
}

func (s *Service) signingStatuses(id RegistryID, repo, digest string) []ImageSigningStatus {
	s.sc.mu.Lock()
	defer s.sc.mu.Unlock()
	out := append([]ImageSigningStatus{}, s.sc.signState[imageKey(id, repo, digest)]...)
	sort.Slice(out, func(i, j int) bool { return out[i].SigningProfileArn < out[j].SigningProfileArn })
	return out
}

// sign stores one signature referrer of img and starts its replication (replication copies
// referrers, as AWS documents). It returns the profile's final status.
func (s *Service) sign(rg *registry, repo string, img *image, profile string) ImageSigningStatus {
	s.sc.mu.Lock()
	fail, failing := s.sc.failing[profile]
	s.sc.mu.Unlock()
	if failing {
		return ImageSigningStatus{SigningProfileArn: profile, Status: StatusFailed, FailureCode: fail.code, FailureReason: fail.reason}
	}
	failed := func(err error) ImageSigningStatus {
		s.log.Warn("ecr managed signing failed", "repository", repo, "digest", img.digest, "error", err)
		return ImageSigningStatus{SigningProfileArn: profile, Status: StatusFailed, FailureCode: "InternalError", FailureReason: err.Error()}
	}
	manifest, err := s.signatureManifest(rg, repo, img, profile)
	if err != nil {
		return failed(err)
	}
	p, msg := parseManifest(manifest, mtOCIManifest)
	if msg != "" {
		return failed(fmt.Errorf("signature manifest: %s", msg))
	}
	res := rg.putManifest(repo, p, "", s.now())
	if res.failure != putOK {
		return failed(fmt.Errorf("signature manifest %s not stored (%d)", p.digest, res.failure))
	}
	if res.changed {
		s.repl.onPush(rg, repo, p.digest, "")
	}
	s.log.Info("ecr managed signing", "registry", rg.id.String(), "repository", repo, "digest", img.digest, "signature", p.digest, "profile", profile)
	return ImageSigningStatus{SigningProfileArn: profile, Status: StatusComplete}
}

// signatureManifest builds a Notary Project signature manifest for img: an OCI image manifest with
// artifactType application/vnd.cncf.notary.signature, the empty config, one application/jose+json
// envelope layer and img as its subject. Deterministic per image and profile.
func (s *Service) signatureManifest(rg *registry, repo string, img *image, profile string) ([]byte, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	created := img.pushedAt.UTC().Format(time.RFC3339)
	subject := map[string]any{"mediaType": img.mediaType, "digest": img.digest, "size": len(img.manifest)}
	payload, _ := json.Marshal(map[string]any{"targetArtifact": subject})
	protected, _ := json.Marshal(map[string]any{
		"alg": "PS384", "cty": "application/vnd.cncf.notary.payload.v1+json",
		"io.cncf.notary.signingScheme": "notary.x509", "io.cncf.notary.signingTime": created,
		"crit": []string{"io.cncf.notary.signingScheme"},
	})
	sum := sha256.Sum256([]byte(profile + "\n" + img.digest))
	envelope, _ := json.Marshal(map[string]any{
		"payload": b64(payload), "protected": b64(protected), "signature": b64(sum[:]),
		"header": map[string]any{"io.cncf.notary.signingAgent": "ecrpush-sandbox managed signing (" + profile + ")"},
	})
	cfgDigest, err := rg.writeBlob(repo, []byte("{}"))
	if err != nil {
		return nil, err
	}
	envDigest, err := rg.writeBlob(repo, envelope)
	if err != nil {
		return nil, err
	}
	thumb := sha256.Sum256([]byte(profile))
	return json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mtOCIManifest,
		"artifactType":  ArtifactTypeNotarySignature,
		"config":        map[string]any{"mediaType": mtOCIEmpty, "digest": cfgDigest, "size": 2},
		"layers":        []any{map[string]any{"mediaType": mtJOSE, "digest": envDigest, "size": len(envelope)}},
		"subject":       subject,
		"annotations": map[string]string{
			"io.cncf.notary.x509chain.thumbprint#S256": `["` + hex.EncodeToString(thumb[:]) + `"]`,
			"org.opencontainers.image.created":         created,
		},
	})
}

func opPutSigningConfiguration(c *call) (any, *apiError) {
	var in struct {
		SigningConfiguration *SigningConfiguration `json:"signingConfiguration"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.SigningConfiguration == nil {
		return nil, invalidParam("signingConfiguration", "Member must not be null")
	}
	if aerr := validateSigning(in.SigningConfiguration); aerr != nil {
		return nil, aerr
	}
	rg, aerr := c.ownRegistry()
	if aerr != nil {
		return nil, aerr
	}
	if err := c.s.SetSigningConfiguration(rg.id, *in.SigningConfiguration); err != nil {
		return nil, newAPIError(excServer, "%s", err)
	}
	return map[string]any{"signingConfiguration": in.SigningConfiguration}, nil
}

func opGetSigningConfiguration(c *call) (any, *apiError) {
	rg, aerr := c.ownRegistry()
	if aerr != nil {
		return nil, aerr
	}
	cfg, ok := c.s.signingConfig(rg.id)
	if !ok {
		return nil, newAPIError(excSigningConfigNotFound, "The signing configuration for the registry with id '%s' does not exist", rg.id.Account)
	}
	return map[string]any{"registryId": rg.id.Account, "signingConfiguration": cfg}, nil
}

func opDeleteSigningConfiguration(c *call) (any, *apiError) {
	rg, aerr := c.ownRegistry()
	if aerr != nil {
		return nil, aerr
	}
	c.s.sc.mu.Lock()
	cfg, ok := c.s.sc.signing[rg.id]
	delete(c.s.sc.signing, rg.id)
	c.s.sc.mu.Unlock()
	if !ok {
		return nil, newAPIError(excSigningConfigNotFound, "The signing configuration for the registry with id '%s' does not exist", rg.id.Account)
	}
	return map[string]any{"registryId": rg.id.Account, "signingConfiguration": cfg}, nil
}

// opDescribeImageSigningStatus answers one status per profile that matched when the image was
// pushed; an image pushed before any rule matched (or replicated here) has none.
func opDescribeImageSigningStatus(c *call) (any, *apiError) {
	var in struct {
		RegistryID     string           `json:"registryId"`
		RepositoryName string           `json:"repositoryName"`
		ImageID        *ImageIdentifier `json:"imageId"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	img, rg, aerr := c.lookupImage(in.RegistryID, in.RepositoryName, in.ImageID)
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{
		"registryId":      rg.id.Account,
		"repositoryName":  in.RepositoryName,
		"imageId":         ImageIdentifier{ImageDigest: img.digest, ImageTag: in.ImageID.ImageTag},
		"signingStatuses": c.s.signingStatuses(rg.id, in.RepositoryName, img.digest),
	}, nil
}

// lookupImage validates an imageId, authorizes the operation on the repository and resolves it.
func (c *call) lookupImage(registryID, repo string, id *ImageIdentifier) (*image, *registry, *apiError) {
	if id == nil {
		return nil, nil, invalidParam("imageId", "Member must not be null")
	}
	if code, _ := checkImageID(*id); code != "" {
		return nil, nil, invalidParam("imageId", "Invalid image identifier: "+code)
	}
	rg, aerr := c.repoAccess(registryID, repo)
	if aerr != nil {
		return nil, nil, aerr
	}
	rg.mu.RLock()
	r, ok := rg.repos[repo]
	var img *image
	if ok {
		img, _ = r.resolve(*id)
	}
	rg.mu.RUnlock()
	if !ok {
		return nil, nil, repoNotFound(repo, rg.id.Account)
	}
	if img == nil {
		return nil, nil, imageNotFound(*id, repo, rg.id.Account)
	}
	return img, rg, nil
}
