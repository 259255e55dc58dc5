package ship_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// fullWorkflow is the part of a workflow file the release tests read.
type fullWorkflow struct {
	On struct {
		Push struct {
			Tags     []string `json:"tags"`
			Branches []string `json:"branches"`
		} `json:"push"`
	} `json:"on"`
	Jobs map[string]struct {
		Needs       any            `json:"needs"`
		Permissions map[string]any `json:"permissions"`
		Outputs     map[string]any `json:"outputs"`
		Steps       []workflowStep `json:"steps"`
	} `json:"jobs"`
}

func loadWorkflow(t *testing.T, name string) (string, fullWorkflow) {
	t.Helper()
	text := readFile(t, filepath.Join(root, ".github", "workflows", name))
	var w fullWorkflow
	if err := yaml.Unmarshal([]byte(text), &w); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	// YAML 1.1 reads the key on as true; GitHub reads it as "on".
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	on := raw["on"]
	if on == nil {
		on = raw["true"]
	}
	b, _ := yaml.Marshal(map[string]any{"on": on})
	if err := yaml.Unmarshal(b, &w); err != nil {
		t.Fatalf("%s: on: %v", name, err)
	}
	return text, w
}

// githubFilterRe turns a GitHub Actions filter pattern into a regular expression, by the rules of
// "Filter pattern cheat sheet" (docs.github.com, Workflow syntax): * matches any character but /, **
// any character, ? zero or one of the preceding character, + one or more of it, [] a range; everything
// else (the dot included) is literal.
func githubFilterRe(t *testing.T, pattern string) *regexp.Regexp {
	t.Helper()
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '*':
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?', '+':
			b.WriteByte(c)
		case '[':
			j := strings.IndexByte(pattern[i:], ']')
			if j < 0 {
				t.Fatalf("filter %q: unclosed [", pattern)
			}
			b.WriteString(pattern[i : i+j+1])
			i += j
		case '\\':
			if i+1 < len(pattern) {
				b.WriteString(regexp.QuoteMeta(pattern[i+1 : i+2]))
				i++
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// TestReleaseOnlyForVersions checks which tags start a release: vMAJOR.MINOR.PATCH, never a pre-release, which
// would otherwise move the major tag users pin (v1).
func TestReleaseOnlyForVersions(t *testing.T) {
	text, w := loadWorkflow(t, "release.yml")
	if len(w.On.Push.Tags) == 0 || len(w.On.Push.Branches) != 0 {
		t.Fatalf("release.yml must run on tag pushes only, got tags %v branches %v", w.On.Push.Tags, w.On.Push.Branches)
	}
	matches := func(tag string) bool {
		for _, p := range w.On.Push.Tags {
			if strings.HasPrefix(p, "!") {
				continue
			}
			if githubFilterRe(t, p).MatchString(tag) {
				return true
			}
		}
		return false
	}
	for _, tag := range []string{"v1.0.0", "v1.3.0", "v10.20.300"} {
		if !matches(tag) {
			t.Errorf("tag %s does not start a release", tag)
		}
	}
	for _, tag := range []string{"v1.3.0-rc1", "v1.3.0-beta.2", "v1", "v1.2", "1.2.3", "v1.2.3.4", "v1.2.3+build", "vX.Y.Z"} {
		if matches(tag) {
			t.Errorf("tag %s starts a release (and would move the major tag)", tag)
		}
	}
	// The filter is the first line of defence; the build job checks the tag again before anything runs.
	if !strings.Contains(text, `^v[0-9]+\.[0-9]+\.[0-9]+$`) {
		t.Error("release.yml does not check GITHUB_REF_NAME against ^v[0-9]+\\.[0-9]+\\.[0-9]+$ in the build job")
	}
}

// TestReleaseRunsBeforePublishing checks the order: the built image runs (each platform's binary checked,
// version, --help, demo) in a job that cannot write packages, the publish job pushes the very index that ran,
// and only then is the major tag pinned to it.
func TestReleaseRunsBeforePublishing(t *testing.T) {
	text, w := loadWorkflow(t, "release.yml")
	needs := func(job string) []string {
		switch v := w.Jobs[job].Needs.(type) {
		case string:
			return []string{v}
		case []any:
			var out []string
			for _, x := range v {
				out = append(out, x.(string))
			}
			return out
		}
		return nil
	}
	var build, publish, pin string
	for name, job := range w.Jobs {
		var runs strings.Builder
		for _, s := range job.Steps {
			runs.WriteString(s.Run + "\n")
		}
		r := runs.String()
		switch {
		case strings.Contains(r, "git push -f origin"):
			pin = name
		case strings.Contains(r, "ghcr.io/ecrpush/ecrpush") && strings.Contains(r, " push "):
			publish = name
		case strings.Contains(r, "docker buildx build") && strings.Contains(r, "docker run"):
			build = name
			for _, want := range []string{" version)", " --help", " demo", "linux/amd64 linux/arm64", "ARM aarch64", "x86-64"} {
				if !strings.Contains(r, want) {
					t.Errorf("job %s does not run/check %q on the built image", name, want)
				}
			}
			if p := job.Permissions["packages"]; p == "write" {
				t.Errorf("job %s runs third-party emulation and may write packages", name)
			}
		}
	}
	if build == "" || publish == "" || pin == "" {
		t.Fatalf("release.yml: build+run %q, publish %q, pin %q: want all three", build, publish, pin)
	}
	if !strings.Contains(strings.Join(needs(publish), " "), build) {
		t.Errorf("the publish job %s does not wait for the build job %s that runs the image", publish, build)
	}
	if !strings.Contains(strings.Join(needs(pin), " "), publish) {
		t.Errorf("the pin job %s does not wait for the publish job %s", pin, publish)
	}
	if !strings.Contains(text, "needs.build.outputs.digest") || !strings.Contains(text, "index.json") {
		t.Error("the publish job does not check that the index it pushes is the digest that ran")
	}
	for _, k := range []string{"source", "revision", "version", "licenses"} {
		if !strings.Contains(text, `"`+k+"=") {
			t.Errorf("the release build does not annotate org.opencontainers.image.%s", k)
		}
	}
}

var usesRe = regexp.MustCompile(`(?m)^\s*(?:-\s+)?uses:\s*(\S+)(?:\s+#\s*(\S+))?`)

// TestActionsPinnedBySHA checks every third-party action in the workflows is pinned to a full commit SHA with
// the version it was taken from in a comment (what Dependabot updates).
func TestActionsPinnedBySHA(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	n := 0
	for _, f := range files {
		for _, m := range usesRe.FindAllStringSubmatch(readFile(t, f), -1) {
			ref := m[1]
			if strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "docker://") {
				continue
			}
			n++
			_, at, ok := strings.Cut(ref, "@")
			if !ok || !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(at) {
				t.Errorf("%s: uses %s is not pinned to a 40-hex commit SHA", filepath.Base(f), ref)
			}
			if !regexp.MustCompile(`^v\d+(\.\d+)*$`).MatchString(m[2]) {
				t.Errorf("%s: uses %s has no version comment (# vX.Y.Z)", filepath.Base(f), ref)
			}
		}
	}
	if n == 0 {
		t.Fatal("no third-party actions found: the pattern is broken")
	}
}

// TestDependabot checks the Dependabot configuration covers the base images, the Go modules and the actions.
func TestDependabot(t *testing.T) {
	var cfg struct {
		Version int `json:"version"`
		Updates []struct {
			Ecosystem string `json:"package-ecosystem"`
			Directory string `json:"directory"`
			Schedule  struct {
				Interval string `json:"interval"`
			} `json:"schedule"`
		} `json:"updates"`
	}
	path := filepath.Join(root, ".github", "dependabot.yml")
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	readYAML(t, path, &cfg)
	if cfg.Version != 2 {
		t.Errorf("dependabot.yml version %d, want 2", cfg.Version)
	}
	have := map[string]bool{}
	for _, u := range cfg.Updates {
		if u.Directory != "/" || u.Schedule.Interval == "" {
			t.Errorf("%s: directory %q, interval %q", u.Ecosystem, u.Directory, u.Schedule.Interval)
		}
		have[u.Ecosystem] = true
	}
	for _, e := range []string{"docker", "gomod", "github-actions"} {
		if !have[e] {
			t.Errorf("dependabot.yml does not update %s", e)
		}
	}
}
