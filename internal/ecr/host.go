package ecr

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// ecrHostRe is amazon-ecr-credential-helper's pattern for private ECR hosts: dkr.ecr or dkr-ecr
// (dual-stack), an optional -fips, the region, and every partition's DNS suffix.
// It compiles on first use, so a process that never parses a host (version, help) does not pay for it.
var ecrHostRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(\d{12})\.dkr[.-]ecr(-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$`)
})

// Registry is one ECR registry a host name stands for.
type Registry struct {
	Host      string // host[:port], lower case, as the client asked for it
	Account   string
	Region    string
	FIPS      bool
	DualStack bool
	Partition string // aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc
	// Mapped is set when the host is not ECR's own name for the registry (ECRPUSH_REGISTRY_HOSTS or a
	// proxyEndpoint seen earlier): its endpoint flags then come from the environment, not the name.
	Mapped bool
}

// String is ACCOUNT:REGION.
func (r Registry) String() string { return r.Account + ":" + r.Region }

// HostOf reduces what docker hands a helper ("https://HOST/v1/", "HOST:PORT", "HOST/path") to the
// lower-case host[:port]. It returns "" when there is no host.
func HostOf(serverURL string) string {
	s := strings.TrimSpace(serverURL)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// ParseHost recognises ECR's own registry host names, with or without a scheme, port or path, the way
// amazon-ecr-credential-helper does: ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn],
// ACCOUNT.dkr-ecr[-fips].REGION.on.aws (dual-stack), and the other partitions' suffixes.
// ECR Public (public.ecr.aws) is not a private registry and is not recognised.
func ParseHost(serverURL string) (Registry, bool) {
	host := HostOf(serverURL)
	if host == "" {
		return Registry{}, false
	}
	hostname := host
	if h, _, ok := strings.Cut(host, ":"); ok {
		hostname = h
	}
	m := ecrHostRe().FindStringSubmatch(hostname)
	if m == nil {
		return Registry{}, false
	}
	r := Registry{Host: host, Account: m[1], FIPS: m[2] == "-fips", Region: strings.ToLower(m[3])}
	suffix := m[4]
	r.DualStack = strings.HasPrefix(suffix, "on.")
	switch suffix {
	case "amazonaws.com.cn", "on.amazonwebservices.com.cn":
		r.Partition = "aws-cn"
	case "c2s.ic.gov":
		r.Partition = "aws-iso"
	case "sc2s.sgov.gov":
		r.Partition = "aws-iso-b"
	case "cloud.adc-e.uk":
		r.Partition = "aws-iso-e"
	case "csp.hci.ic.gov":
		r.Partition = "aws-iso-f"
	case "amazonaws.eu":
		r.Partition = "aws-eusc"
	default:
		r.Partition = "aws"
		if strings.HasPrefix(r.Region, "us-gov-") {
			r.Partition = "aws-us-gov"
		}
	}
	return r, true
}

// HostMap maps registry hosts that are not ECR's own names to the registry behind them.
type HostMap map[string]Registry

// ParseHostMap reads HOST=ACCOUNT:REGION entries separated by commas, semicolons or white space
// (the ECRPUSH_REGISTRY_HOSTS format), e.g. "127.0.0.1:5000=111122223333:us-east-1".
func ParseHostMap(s string) (HostMap, error) {
	m := HostMap{}
	for _, e := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\t' }) {
		host, reg, ok := strings.Cut(e, "=")
		account, region, ok2 := strings.Cut(reg, ":")
		host = HostOf(host)
		if !ok || !ok2 || host == "" {
			return nil, fixable.New("registry host mapping %q is not HOST=ACCOUNT:REGION (e.g. 127.0.0.1:5000=111122223333:us-east-1)", e)
		}
		if !IsAccount(account) {
			return nil, fixable.New("registry host mapping %q: %q is not a 12-digit AWS account id", e, account)
		}
		if err := CheckRegion("registry host mapping "+e+": region", region); err != nil {
			return nil, err
		}
		if prev, dup := m[host]; dup && (prev.Account != account || prev.Region != region) {
			return nil, fixable.New("registry host %s is mapped twice (%s and %s:%s): keep one", host, prev, account, region)
		}
		m[host] = Registry{Host: host, Account: account, Region: region, Partition: PartitionOf(region), Mapped: true}
	}
	return m, nil
}

// String writes the map back in ParseHostMap's format, sorted.
func (m HostMap) String() string {
	var out []string
	for h, r := range m {
		out = append(out, fmt.Sprintf("%s=%s", h, r))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// RegistryHost is ECR's own host name for account's private registry in region, with the region's
// partition's DNS suffix (what GetAuthorizationToken names as proxyEndpoint on AWS).
func RegistryHost(account, region string) string {
	suffix := "amazonaws.com"
	if p, _ := lookup(region); p != nil {
		suffix = p.DNSSuffix
	}
	return account + ".dkr.ecr." + region + "." + suffix
}
