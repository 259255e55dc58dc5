package mirror

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"

	"github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/push"
)

// DefaultRule maps a source to its ECR repository when the file sets none.
const DefaultRule = "mirror/{registry}/{path}"

// File is an images file:
//
//	repository: mirror/{registry}/{path}   # the mapping rule (placeholders {registry} {path} {name})
//	platforms: [linux/amd64, linux/arm64]  # default filter for every image (none: all platforms)
//	images:
//	  - source: alpine:3.20                # docker.io/library/alpine:3.20
//	  - source: ghcr.io/org/tool:v1.2
//	    repository: tools/tool             # rename (a name, or a rule of its own)
//	    tags: [v1.2, stable]               # default: the source's tag
//	    platforms: [linux/amd64]
//	  - source: europe-docker.pkg.dev/p/r/app@sha256:…
//	    google: true                        # read with the Google credentials (implied for *.pkg.dev, gcr.io)
type File struct {
	Repository string   `json:"repository,omitempty"`
	Platforms  []string `json:"platforms,omitempty"`
	Images     []Image  `json:"images"`
}

// Image is one entry of the file.
type Image struct {
	Source     string   `json:"source"`
	Repository string   `json:"repository,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	Platforms  []string `json:"platforms,omitempty"`
	Google     bool     `json:"google,omitempty"`
}

// Item is one image to mirror, resolved from the file.
type Item struct {
	Source     string         // as written in the file: the lock file's key
	Ref        name.Reference // a name.Digest when the file pins one
	Repository string         // ECR repository in the ci account
	Tags       []string       // tags to set in ECR (none: by digest only)
	Platforms  []v1.Platform  // nil: every platform, the source digest unchanged
	Google     bool
}

var (
	placeholderRe = regexp.MustCompile(`\{[^}]*\}`)
)

// Load reads and parses an images file.
func Load(p string) (*File, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("cannot read the images file %q: %v", p, err))
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fixable.Wrap(err, fmt.Sprintf("%s: %v", p, err))
	}
	return f, nil
}

// Parse reads an images file (YAML or JSON); unknown keys are errors, so a typo never passes silently.
func Parse(b []byte) (*File, error) {
	var f File
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, fixable.New("not a valid images file: %v", err)
	}
	if len(f.Images) == 0 {
		return nil, fixable.New("no images: list them under images:, each with a source")
	}
	return &f, nil
}

// Items resolves every entry: its reference, ECR repository, tags and platform filter. Every problem
// is reported before anything is copied.
func (f *File) Items() ([]Item, error) {
	rule := f.Repository
	if rule == "" {
		rule = DefaultRule
	}
	var out []Item
	seen := map[string]int{}
	for i, im := range f.Images {
		it, err := im.item(rule, f.Platforms)
		if err != nil {
			return nil, fixable.Wrap(err, fmt.Sprintf("images[%d] (%s): %v", i, im.Source, err))
		}
		if j, dup := seen[it.Source]; dup {
			return nil, fixable.New("images[%d]: source %q is listed twice (also images[%d])", i, it.Source, j)
		}
		seen[it.Source] = i
		out = append(out, it)
	}
	return out, nil
}

func (im Image) item(rule string, defaultPlatforms []string) (Item, error) {
	src := strings.TrimSpace(strings.TrimPrefix(im.Source, "docker://"))
	if src == "" {
		return Item{}, fixable.New("source is empty")
	}
	ref, tag, err := ParseSource(src)
	if err != nil {
		return Item{}, err
	}
	r := rule
	if im.Repository != "" {
		r = im.Repository
	}
	repo, err := MapRepository(r, ref.Context())
	if err != nil {
		return Item{}, err
	}
	tags := im.Tags
	if len(tags) == 0 && tag != "" {
		tags = []string{tag}
	}
	for _, t := range tags {
		if err := ecr.CheckTag("tag", t); err != nil {
			return Item{}, err
		}
	}
	plats := im.Platforms
	if len(plats) == 0 {
		plats = defaultPlatforms
	}
	var ps []v1.Platform
	for _, p := range plats {
		v, err := push.ParsePlatform(p)
		if err != nil {
			return Item{}, fixable.New("platform %q must be OS/ARCH[/VARIANT], e.g. linux/amd64", p)
		}
		ps = append(ps, v)
	}
	return Item{Source: im.Source, Ref: ref, Repository: repo, Tags: tags, Platforms: ps, Google: im.Google}, nil
}

// ParseSource reads REGISTRY/REPO[:TAG][@DIGEST], keeping the tag of a reference that also pins a
// digest (name.ParseReference would drop it), so "alpine:3.20@sha256:…" is tagged 3.20 in ECR.
func ParseSource(s string) (name.Reference, string, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, "", fixable.New("%q is not an image reference (REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]): %v", s, err)
	}
	switch r := ref.(type) {
	case name.Tag:
		return r, r.TagStr(), nil
	case name.Digest:
		before, _, _ := strings.Cut(s, "@")
		if t, err := name.NewTag(before); err == nil && strings.Contains(before[strings.LastIndex(before, "/")+1:], ":") {
			return r, t.TagStr(), nil
		}
		return r, "", nil
	}
	return ref, "", nil
}

// MapRepository applies a rule to a source repository: {registry} is the source registry (docker.io for
// Docker Hub, a port joined with -), {path} the repository path there (library/alpine), {name} its last
// element. A rule without placeholders is a plain rename.
func MapRepository(rule string, src name.Repository) (string, error) {
	reg := strings.ToLower(src.RegistryStr())
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	reg = strings.ReplaceAll(reg, ":", "-")
	p := src.RepositoryStr()
	out := strings.NewReplacer("{registry}", reg, "{path}", p, "{name}", path.Base(p)).Replace(rule)
	if m := placeholderRe.FindString(out); m != "" {
		return "", fixable.New("repository rule %q: unknown placeholder %s (use {registry}, {path}, {name})", rule, m)
	}
	out = strings.Trim(out, "/")
	if err := ecr.CheckRepository(fmt.Sprintf("repository (from rule %q)", rule), out); err != nil {
		return "", err
	}
	return out, nil
}

// CommonPrefix is the longest prefix every repository shares, cut after its last "/" (the natural
// replication filter for a set of mirrored repositories); "" when they share none.
func CommonPrefix(repos []string) string {
	if len(repos) == 0 {
		return ""
	}
	p := repos[0]
	for _, r := range repos[1:] {
		for !strings.HasPrefix(r, p) {
			p = p[:len(p)-1]
		}
	}
	if len(repos) == 1 {
		return p
	}
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[:i+1]
	}
	return ""
}
