package ecr

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Image scanning: scan on push (a repository's scanOnPush, or the registry scanning configuration's
// rules), basic or enhanced, and DescribeImageScanFindings in both of AWS's shapes. The sandbox has
// no vulnerability database: findings are deterministic, read from the image's config label
// FindingsLabel, so a test decides what a scan finds by how it builds the image. Sources in doc.go.

// FindingsLabel is the image config label that seeds the sandbox's findings:
// "CRITICAL=1,HIGH=2,MEDIUM=0,LOW=3,INFORMATIONAL=1,UNDEFINED=1". No label: a clean image.
const FindingsLabel = "org.ecrpush.sandbox.findings"

// RegistryScanningConfiguration is a registry's scanning configuration.
type RegistryScanningConfiguration struct {
	ScanType string                 `json:"scanType"`
	Rules    []RegistryScanningRule `json:"rules"`
}

// RegistryScanningRule applies a scan frequency to matching repositories (WILDCARD filters).
type RegistryScanningRule struct {
	ScanFrequency     string                     `json:"scanFrequency"`
	RepositoryFilters []ScanningRepositoryFilter `json:"repositoryFilters"`
}

// ScanningRepositoryFilter matches repository names (WILDCARD: * is any sequence).
type ScanningRepositoryFilter struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

const excScanNotFound = "ScanNotFoundException"

// severityOrder is the order findings are listed in.
var severityOrder = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"}

// SetRegistryScanning is PutRegistryScanningConfiguration without the API.
func (s *Service) SetRegistryScanning(id RegistryID, cfg RegistryScanningConfiguration) error {
	if _, ok := s.registry(id); !ok {
		return fmt.Errorf("ecr: no registry %s", id)
	}
	if aerr := validateScanning(&cfg); aerr != nil {
		return aerr
	}
	s.sc.mu.Lock()
	defer s.sc.mu.Unlock()
	if s.sc.scanning == nil {
		s.sc.scanning = map[RegistryID]RegistryScanningConfiguration{}
	}
	s.sc.scanning[id] = cfg
	return nil
}

func validateScanning(cfg *RegistryScanningConfiguration) *apiError {
	if cfg.ScanType == "" {
		cfg.ScanType = "BASIC"
	}
	if cfg.ScanType != "BASIC" && cfg.ScanType != "ENHANCED" {
		return invalidParam("scanType", "Member must satisfy enum value set: [BASIC, ENHANCED]")
	}
	if len(cfg.Rules) > 2 {
		return invalidParam("rules", "Member must have length less than or equal to 2")
	}
	for i, r := range cfg.Rules {
		f := fmt.Sprintf("rules.%d.member", i+1)
		switch {
		case r.ScanFrequency == "CONTINUOUS_SCAN" && cfg.ScanType == "BASIC":
			return newAPIError(excInvalidParameter, "Invalid parameter at '%s.scanFrequency' failed to satisfy constraint: 'CONTINUOUS_SCAN is only valid for ENHANCED scanning'", f)
		case r.ScanFrequency != "SCAN_ON_PUSH" && r.ScanFrequency != "CONTINUOUS_SCAN" && r.ScanFrequency != "MANUAL":
			return invalidParam(f+".scanFrequency", "Member must satisfy enum value set: [SCAN_ON_PUSH, CONTINUOUS_SCAN, MANUAL]")
		case len(r.RepositoryFilters) < 1 || len(r.RepositoryFilters) > 100:
			return invalidParam(f+".repositoryFilters", "Member must have length between 1 and 100")
		}
		for j, rf := range r.RepositoryFilters {
			if rf.FilterType != "WILDCARD" {
				return invalidParam(fmt.Sprintf("%s.repositoryFilters.%d.member.filterType", f, j+1), "Member must satisfy enum value set: [WILDCARD]")
			}
			if len(rf.Filter) < 1 || len(rf.Filter) > 255 {
				return invalidParam(fmt.Sprintf("%s.repositoryFilters.%d.member.filter", f, j+1), "Member must have length between 1 and 255")
			}
		}
	}
	return nil
}

func (s *Service) scanningConfig(id RegistryID) RegistryScanningConfiguration {
	s.sc.mu.Lock()
	defer s.sc.mu.Unlock()
	cfg, ok := s.sc.scanning[id]
	if !ok {
		return RegistryScanningConfiguration{ScanType: "BASIC", Rules: []RegistryScanningRule{}}
	}
	return cfg
}

// scanFor decides whether a push to repo is scanned, and how: a registry rule that matches wins
// (MANUAL: not scanned on push); without registry rules the repository's scanOnPush decides (basic).
func scanFor(cfg RegistryScanningConfiguration, repo string, scanOnPush bool) (scanType, frequency string, ok bool) {
	if len(cfg.Rules) == 0 {
		return "BASIC", "SCAN_ON_PUSH", scanOnPush
	}
	for _, r := range cfg.Rules {
		for _, f := range r.RepositoryFilters {
			if wildcardMatch(f.Filter, repo) {
				return cfg.ScanType, r.ScanFrequency, r.ScanFrequency != "MANUAL"
			}
		}
	}
	return "", "", false
}

// startScan records the scan a push starts (once per image).
func (s *Service) startScan(id RegistryID, repo, digest string, scanOnPush bool) {
	st, freq, ok := scanFor(s.scanningConfig(id), repo, scanOnPush)
	if !ok {
		return
	}
	key := imageKey(id, repo, digest)
	s.sc.mu.Lock()
	defer s.sc.mu.Unlock()
	if s.sc.scans == nil {
		s.sc.scans = map[string]scanRecord{}
	}
	if _, done := s.sc.scans[key]; !done {
		s.sc.scans[key] = scanRecord{scanType: st, frequency: freq, started: s.now()}
	}
}

func (s *Service) scanOf(id RegistryID, repo, digest string) (scanRecord, time.Duration, bool) {
	s.sc.mu.Lock()
	defer s.sc.mu.Unlock()
	rec, ok := s.sc.scans[imageKey(id, repo, digest)]
	return rec, s.sc.scanDelay, ok
}

// seededFinding is one deterministic finding: a CVE-like id, a package and the version that fixes it.
type seededFinding struct {
	id, severity, pkg, version, fixed string
	score                             float64
}

var seedPackages = []struct{ name, version, fixed string }{
	{"openssl", "3.0.2-0ubuntu1", "3.0.2-0ubuntu1.18"},
	{"zlib1g", "1:1.2.11.dfsg-2", "1:1.2.11.dfsg-2+deb11u2"},
	{"libc6", "2.31-13", "2.31-13+deb11u11"},
	{"curl", "7.74.0-1.3", "7.74.0-1.3+deb11u14"},
	{"libexpat1", "2.2.10-2", "2.2.10-2+deb11u6"},
	{"busybox", "1.36.1-r2", "1.36.1-r7"},
}

var severityScore = map[string]float64{"CRITICAL": 9.8, "HIGH": 7.5, "MEDIUM": 5.3, "LOW": 3.1, "INFORMATIONAL": 0, "UNDEFINED": 0}

// seedFindings reads FindingsLabel from the image's config and expands it, deterministically for the
// digest. It reports ok=false for what a scanner cannot scan: an index, or a manifest whose config
// is not an image config (artifacts, buildx attestation manifests are images but carry no packages).
func (rg *registry) seedFindings(img *image) (out []seededFinding, ok bool) {
	if isIndexType(img.mediaType) || len(img.blobs) == 0 {
		return nil, false
	}
	var m manifestMeta
	if json.Unmarshal(img.manifest, &m) != nil || m.Config == nil ||
		(m.Config.MediaType != "application/vnd.oci.image.config.v1+json" && m.Config.MediaType != "application/vnd.docker.container.image.v1+json") {
		return nil, false
	}
	f, _, err := rg.store.open(img.blobs[0])
	if err != nil {
		return nil, false
	}
	defer f.Close()
	var cfg struct {
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
	}
	if err := json.NewDecoder(io.LimitReader(f, 4<<20)).Decode(&cfg); err != nil {
		return nil, true // an unreadable config has no packages to find anything in
	}
	spec := cfg.Config.Labels[FindingsLabel]
	for _, part := range strings.Split(spec, ",") {
		sev, n, found := strings.Cut(strings.TrimSpace(part), "=")
		count, err := strconv.Atoi(n)
		sev = strings.ToUpper(strings.TrimSpace(sev))
		if !found || err != nil || count < 0 || count > 1000 {
			continue
		}
		if _, known := severityScore[sev]; !known {
			continue
		}
		for i := range count {
			h := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|%d", img.digest, sev, i)))
			p := seedPackages[int(h[0])%len(seedPackages)]
			out = append(out, seededFinding{
				id:       fmt.Sprintf("CVE-2099-%05d", binary.BigEndian.Uint32(h[1:5])%100000),
				severity: sev, pkg: p.name, version: p.version, fixed: p.fixed, score: severityScore[sev],
			})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return indexOf(severityOrder, out[i].severity) < indexOf(severityOrder, out[j].severity)
	})
	return out, true
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return len(list)
}

// opDescribeImageScanFindings answers the scan of an image: ScanNotFoundException when no scan
// ran, IN_PROGRESS (basic) or PENDING (enhanced) until the scan delay has passed, then the findings
// in the basic shape (findings[] with package attributes) or the enhanced one (enhancedFindings[],
// Amazon Inspector's fields, with fixedInVersion), paginated by maxResults/nextToken.
func opDescribeImageScanFindings(c *call) (any, *apiError) {
	var in struct {
		RegistryID     string           `json:"registryId"`
		RepositoryName string           `json:"repositoryName"`
		ImageID        *ImageIdentifier `json:"imageId"`
		NextToken      string           `json:"nextToken"`
		MaxResults     *int             `json:"maxResults"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	img, rg, aerr := c.lookupImage(in.RegistryID, in.RepositoryName, in.ImageID)
	if aerr != nil {
		return nil, aerr
	}
	rec, delay, ok := c.s.scanOf(rg.id, in.RepositoryName, img.digest)
	if !ok {
		return nil, newAPIError(excScanNotFound,
			"Image scan does not exist for the image with '{imageDigest:'%s', imageTag:'%s'}' in the repository with name '%s' in the registry with id '%s'",
			img.digest, nullIfEmpty(in.ImageID.ImageTag), in.RepositoryName, rg.id.Account)
	}
	resp := map[string]any{
		"registryId":     rg.id.Account,
		"repositoryName": in.RepositoryName,
		"imageId":        ImageIdentifier{ImageDigest: img.digest, ImageTag: in.ImageID.ImageTag},
	}
	now := c.s.now()
	if now.Before(rec.started.Add(delay)) {
		if rec.scanType == "ENHANCED" {
			resp["imageScanStatus"] = map[string]string{"status": "PENDING", "description": "The scan is pending."}
		} else {
			resp["imageScanStatus"] = map[string]string{"status": "IN_PROGRESS", "description": "The scan is in progress."}
		}
		return resp, nil
	}
	seeds, scannable := rg.seedFindings(img)
	if !scannable {
		resp["imageScanStatus"] = map[string]string{"status": "UNSUPPORTED_IMAGE", "description": "UnsupportedImageError: The operating system and/or package manager are not supported."}
		return resp, nil
	}
	counts := map[string]int{}
	for _, f := range seeds {
		counts[f.severity]++
	}
	span, next, aerr := paginate(len(seeds), in.NextToken, in.MaxResults)
	if aerr != nil {
		return nil, aerr
	}
	page := seeds[span[0]:span[1]]
	completed := epochTime(rec.started.Add(delay))
	dbUpdated := epochTime(rec.started.Add(-6 * time.Hour).Truncate(time.Hour))
	findings := map[string]any{
		"findingSeverityCounts":        counts,
		"imageScanCompletedAt":         completed,
		"vulnerabilitySourceUpdatedAt": dbUpdated,
	}
	if rec.scanType == "ENHANCED" {
		desc := "Scan on push is selected for image."
		if rec.frequency == "CONTINUOUS_SCAN" {
			desc = "Continuous scan is selected for image."
		}
		resp["imageScanStatus"] = map[string]string{"status": "ACTIVE", "description": desc}
		findings["enhancedFindings"] = enhancedFindings(rg, in.RepositoryName, img, page, completed)
	} else {
		resp["imageScanStatus"] = map[string]string{"status": "COMPLETE", "description": "The scan was completed successfully."}
		findings["findings"] = basicFindings(page)
	}
	resp["imageScanFindings"] = findings
	if next != "" {
		resp["nextToken"] = next
	}
	return resp, nil
}

func basicFindings(seeds []seededFinding) []map[string]any {
	out := []map[string]any{}
	for _, f := range seeds {
		attrs := []map[string]string{{"key": "package_version", "value": f.version}, {"key": "package_name", "value": f.pkg}}
		if f.score > 0 {
			attrs = append(attrs, map[string]string{"key": "CVSS2_VECTOR", "value": "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
				map[string]string{"key": "CVSS2_SCORE", "value": strconv.FormatFloat(f.score, 'f', 1, 64)})
		}
		out = append(out, map[string]any{
			"name": f.id, "severity": f.severity, "attributes": attrs,
			"uri":         "https://security-tracker.debian.org/tracker/" + f.id,
			"description": "Sandbox finding " + f.id + " in " + f.pkg + " " + f.version + ".",
		})
	}
	return out
}

func enhancedFindings(rg *registry, repo string, img *image, seeds []seededFinding, at epochTime) []map[string]any {
	out := []map[string]any{}
	rg.mu.RLock()
	var tags []string
	if r, ok := rg.repos[repo]; ok {
		tags = r.tagsOf(img.digest)
	}
	rg.mu.RUnlock()
	for _, f := range seeds {
		vector := "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
		out = append(out, map[string]any{
			"awsAccountId":    rg.id.Account,
			"description":     "Sandbox finding " + f.id + " in " + f.pkg + " " + f.version + ".",
			"findingArn":      "arn:aws:inspector2:" + rg.id.Region + ":" + rg.id.Account + ":finding/" + strings.TrimPrefix(img.digest, "sha256:")[:32],
			"firstObservedAt": at, "lastObservedAt": at, "updatedAt": at,
			"fixAvailable": "YES", "exploitAvailable": "NO",
			"packageVulnerabilityDetails": map[string]any{
				"cvss":            []map[string]any{{"baseScore": f.score, "scoringVector": vector, "source": "NVD", "version": "3.1"}},
				"referenceUrls":   []string{"https://nvd.nist.gov/vuln/detail/" + f.id},
				"source":          "NVD",
				"sourceUrl":       "https://nvd.nist.gov/vuln/detail/" + f.id,
				"vendorSeverity":  f.severity,
				"vulnerabilityId": f.id,
				"vulnerablePackages": []map[string]any{{
					"name": f.pkg, "version": f.version, "fixedInVersion": f.fixed, "packageManager": "OS", "arch": "X86_64", "epoch": 0,
				}},
			},
			"remediation": map[string]any{"recommendation": map[string]string{"text": "Upgrade " + f.pkg + " to " + f.fixed + "."}},
			"resources": []map[string]any{{
				"id":   "arn:aws:ecr:" + rg.id.Region + ":" + rg.id.Account + ":repository/" + repo + "/" + img.digest,
				"type": "AWS_ECR_CONTAINER_IMAGE",
				"details": map[string]any{"awsEcrContainerImage": map[string]any{
					"imageHash": img.digest, "imageTags": tags, "registry": rg.id.Account, "repositoryName": repo,
					"pushedAt": epochTime(img.pushedAt), "platform": "LINUX", "architecture": "amd64",
				}},
			}},
			"score":        f.score,
			"scoreDetails": map[string]any{"cvss": map[string]any{"score": f.score, "scoreSource": "NVD", "scoringVector": vector, "version": "3.1", "adjustments": []any{}}},
			"severity":     f.severity,
			"status":       "ACTIVE",
			"title":        f.id + " - " + f.pkg,
			"type":         "PACKAGE_VULNERABILITY",
		})
	}
	return out
}

func opPutRegistryScanningConfiguration(c *call) (any, *apiError) {
	var in RegistryScanningConfiguration
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.Rules == nil {
		in.Rules = []RegistryScanningRule{}
	}
	if aerr := validateScanning(&in); aerr != nil {
		return nil, aerr
	}
	rg, aerr := c.ownRegistry()
	if aerr != nil {
		return nil, aerr
	}
	if err := c.s.SetRegistryScanning(rg.id, in); err != nil {
		return nil, newAPIError(excServer, "%s", err)
	}
	return map[string]any{"registryScanningConfiguration": in}, nil
}

func opGetRegistryScanningConfiguration(c *call) (any, *apiError) {
	rg, aerr := c.ownRegistry()
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{"registryId": rg.id.Account, "scanningConfiguration": c.s.scanningConfig(rg.id)}, nil
}

// opPutImageScanningConfiguration sets a repository's scanOnPush.
func opPutImageScanningConfiguration(c *call) (any, *apiError) {
	var in struct {
		RegistryID                 string                      `json:"registryId"`
		RepositoryName             string                      `json:"repositoryName"`
		ImageScanningConfiguration *ImageScanningConfiguration `json:"imageScanningConfiguration"`
	}
	if aerr := c.decode(&in); aerr != nil {
		return nil, aerr
	}
	if in.ImageScanningConfiguration == nil {
		return nil, invalidParam("imageScanningConfiguration", "Member must not be null")
	}
	rg, aerr := c.repoAccess(in.RegistryID, in.RepositoryName)
	if aerr != nil {
		return nil, aerr
	}
	rg.mu.Lock()
	r, ok := rg.repos[in.RepositoryName]
	if ok {
		r.scanOnPush = in.ImageScanningConfiguration.ScanOnPush
	}
	rg.mu.Unlock()
	if !ok {
		return nil, repoNotFound(in.RepositoryName, rg.id.Account)
	}
	return map[string]any{"registryId": rg.id.Account, "repositoryName": in.RepositoryName,
		"imageScanningConfiguration": in.ImageScanningConfiguration}, nil
}
