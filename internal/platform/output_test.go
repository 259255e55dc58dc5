package platform

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/internal/replicate"
)

// parseOutputs reads a GITHUB_OUTPUT file the way the runner does (actions/runner FileCommandManager:
// NAME=VALUE lines, and NAME<<DELIMITER blocks ended by a line equal to the delimiter).
func parseOutputs(t *testing.T, text string) map[string]string {
	t.Helper()
	out := map[string]string{}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		name, delim, ok := strings.Cut(lines[i], "<<")
		if !ok {
			k, v, _ := strings.Cut(lines[i], "=")
			out[k] = v
			continue
		}
		var val []string
		for i++; i < len(lines) && lines[i] != delim; i++ {
			val = append(val, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("%s<<%s never closed", name, delim)
		}
		out[name] = strings.Join(val, "\n")
	}
	return out
}

func TestGitHubOutputsUseRandomDelimiters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "output")
	// A value holding go-githubactions' fixed delimiter on its own line, and what would follow an injection.
	hostile := "line1\n_GitHubActionsFileCommandDelimeter_\ninjected=yes\nghadelimiter_\nEOF"
	outputs := [][2]string{{"digest", "sha256:abc"}, {"replication", hostile}, {"empty", ""}}
	if err := writeOutputs(path, outputs); err != nil {
		t.Fatal(err)
	}
	if err := writeOutputs(path, [][2]string{{"second", "x"}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	got := parseOutputs(t, string(b))
	want := map[string]string{"digest": "sha256:abc", "replication": hostile, "empty": "", "second": "x"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outputs read back as %q, want %q", got, want)
	}
	delims := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if _, d, ok := strings.Cut(line, "<<"); ok {
			if !strings.HasPrefix(d, "ghadelimiter_") || len(d) != len("ghadelimiter_")+32 || delims[d] {
				t.Errorf("delimiter %q is not a fresh ghadelimiter_ with 128 random bits", d)
			}
			delims[d] = true
		}
	}
	if err := writeOutputs(path, [][2]string{{"a=b", "x"}}); err == nil {
		t.Error("an output name with = was written")
	}
}

func TestBuilderOutputStaysUnderCloudBuildsLimit(t *testing.T) {
	base := Report{Digest: "sha256:" + strings.Repeat("a", 64), Registry: "111122223333.dkr.ecr.us-east-1.amazonaws.com", Repository: "team/app",
		Images: []Image{{URI: "111122223333.dkr.ecr.us-east-1.amazonaws.com/team/app@sha256:" + strings.Repeat("a", 64), Tags: []string{"v1", "latest"}}}}
	rows := func(n int) []Replica {
		var out []Replica
		for i := range n {
			out = append(out, replicate.Status{Account: fmt.Sprintf("%012d", i), Region: "eu-west-1", Status: "COMPLETE",
				URI: fmt.Sprintf("%012d.dkr.ecr.eu-west-1.amazonaws.com/team/app@sha256:%s", i, strings.Repeat("a", 64))})
		}
		return out
	}
	manyTags := base
	manyTags.Images = []Image{{URI: base.Images[0].URI}}
	for i := range 5000 {
		manyTags.Images[0].Tags = append(manyTags.Images[0].Tags, fmt.Sprintf("tag-%05d", i))
	}
	for _, tc := range []struct {
		name      string
		r         Report
		keepsURIs bool
		truncated bool
	}{
		{"small", func() Report { r := base; r.Replication = rows(3); return r }(), true, false},
		{"replicas over the limit", func() Report { r := base; r.Replication = rows(400); return r }(), false, false},
		{"far over the limit", func() Report { r := base; r.Replication = rows(3000); return r }(), false, true},
		{"tags over the limit", manyTags, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig, _ := json.Marshal(tc.r)
			b, err := builderOutput(&tc.r)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) >= MaxBuilderOutput {
				t.Fatalf("%d bytes, Cloud Build keeps %d", len(b), MaxBuilderOutput)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if got["digest"] != tc.r.Digest {
				t.Errorf("digest %v lost", got["digest"])
			}
			if _, ok := got["truncated"]; ok != tc.truncated {
				t.Errorf("truncated=%v, want %v (%d bytes)", ok, tc.truncated, len(b))
			}
			if strings.Contains(string(b), ".dkr.ecr.eu-west-1.amazonaws.com/team/app@") != tc.keepsURIs {
				t.Errorf("replica URIs kept=%v, want %v", !tc.keepsURIs, tc.keepsURIs)
			}
			if after, _ := json.Marshal(tc.r); string(after) != string(orig) {
				t.Error("slimming the output changed the report itself")
			}
		})
	}
}

func TestReportSaysWhenTheDigestWasComputed(t *testing.T) {
	r := Report{Digest: "sha256:" + strings.Repeat("b", 64), Registry: "r", Repository: "app", Images: []Image{{URI: "r/app@sha256:b", Tags: []string{"v1"}}}}
	var text strings.Builder
	_ = r.WriteText(&text)
	if strings.Contains(text.String(), "computed") || strings.Contains(r.Markdown(), "computed") || strings.Contains(string(r.JSON()), "digestComputed") {
		t.Error("a kept digest is reported as computed")
	}
	r.DigestComputed = "it has no OCI index.json"
	text.Reset()
	_ = r.WriteText(&text)
	for what, s := range map[string]string{"text": text.String(), "summary": r.Markdown(), "json": string(r.JSON())} {
		if !strings.Contains(s, "it has no OCI index.json") {
			t.Errorf("the %s report does not say the digest was computed:\n%s", what, s)
		}
	}
}
