package ship_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"

	"github.com/ecrpush/ecrpush/internal/cli"
	"github.com/ecrpush/ecrpush/internal/ocitest"
	"github.com/ecrpush/ecrpush/internal/platform"
)

// signedIndexLayout writes what the README's build steps leave in dir: a buildx index with its
// attestation manifests, and beside it a signature and an SBOM of the index (what notation and oras
// attach), tagged tag. It returns the index digest.
func signedIndexLayout(t *testing.T, dir, tag string) string {
	t.Helper()
	idx, _, err := ocitest.BuildxIndex("linux/amd64", "linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := ocitest.Describe(idx)
	if _, err := ocitest.WriteLayout(dir, idx, tag, []v1.Image{ocitest.Signature(subj), ocitest.SBOM(subj)}, nil); err != nil {
		t.Fatal(err)
	}
	return subj.Digest.String()
}

// TestReadmeSupplyChainExamples runs the README's two supply-chain examples against the sandbox as their
// platforms run them: the GitHub step with its inputs, and the Cloud Build step's args with its
// substitutions. Both push the index and carry its signature and SBOM to every destination.
func TestReadmeSupplyChainExamples(t *testing.T) {
	readme := readFile(t, filepath.Join(root, "README.md"))
	var gh, cb string
	for _, b := range fencedBlocks(readme, "yaml") {
		switch {
		case strings.Contains(b, "require-signature: true") && strings.Contains(b, "uses: ecrpush/ecrpush@"):
			gh = b
		case strings.Contains(b, "# cloudbuild.yaml") && strings.Contains(b, "--require-referrers"):
			cb = b
		}
	}
	if gh == "" || cb == "" {
		t.Fatal("README lacks the supply-chain GitHub or Cloud Build example")
	}
	sb := startSandbox(t, nil)
	// The examples' signature comes from the build (notation); the ci registry's managed signing is off.
	a := loadAction(t)

	t.Run("github", func(t *testing.T) {
		var steps []workflowStep
		if err := yaml.Unmarshal([]byte(gh), &steps); err != nil {
			t.Fatalf("the example's steps: %v", err)
		}
		var with map[string]string
		for _, s := range steps {
			if strings.HasPrefix(s.Uses, "ecrpush/ecrpush@") {
				with = map[string]string{}
				for k, v := range s.With {
					if _, ok := a.Inputs[k]; !ok {
						t.Errorf("input %q is not declared in action.yml", k)
					}
					with[k] = inputValue(v)
				}
			}
		}
		if with == nil {
			t.Fatal("no ecrpush step")
		}
		workspace := t.TempDir()
		layoutDir, tag, _ := strings.Cut(strings.TrimPrefix(with["source"], "oci-layout:"), ":")
		digest := signedIndexLayout(t, filepath.Join(workspace, layoutDir), tag)
		env := baseEnv(t, sb, nil)
		with["role-to-assume"] = env["ECRPUSH_ROLE_ARN"]
		with["tags"] = strings.ReplaceAll(with["tags"], "${{ github.sha }}", sb.Config.GitHub.SHA)
		with["aws-region"] = "us-east-1"
		for _, name := range a.inputNames() {
			env[cli.InputName(name)] = with[name]
		}
		out, summary := filepath.Join(t.TempDir(), "output"), filepath.Join(t.TempDir(), "summary")
		env["GITHUB_OUTPUT"], env["GITHUB_STEP_SUMMARY"], env["GITHUB_ACTIONS"], env["GITHUB_WORKSPACE"] = out, summary, "true", workspace
		r := run(t, workspace, env, a.Runs.Args...)
		if r.code != 0 {
			t.Fatalf("exit %d: %s\n%s", r.code, r.errLine, r.stderr)
		}
		o := githubOutputs(t, readFile(t, out))
		if o["digest"] != digest {
			t.Errorf("digest %q, want the index's %s", o["digest"], digest)
		}
		var rows []struct {
			Account, Region, Status string
			Referrers               *struct{ Expected, Present int }
		}
		decodeJSON(t, "replication", o["replication"], &rows)
		if len(rows) != 2 {
			t.Fatalf("replication rows %+v", rows)
		}
		for _, row := range rows {
			if row.Status != "COMPLETE" || row.Referrers == nil || row.Referrers.Present != 2 {
				t.Errorf("%s %s: %s, referrers %+v", row.Account, row.Region, row.Status, row.Referrers)
			}
		}
		if s := readFile(t, summary); !strings.Contains(s, "Referrers carried") {
			t.Errorf("the step summary does not list the referrers:\n%s", s)
		}
	})

	t.Run("cloudbuild", func(t *testing.T) {
		var cfg struct {
			Steps []struct {
				Name string
				Args []string
			}
		}
		if err := yaml.Unmarshal([]byte(cb), &cfg); err != nil || len(cfg.Steps) != 1 {
			t.Fatalf("the example: %v", err)
		}
		workspace := t.TempDir()
		env := baseEnv(t, sb, func(k string) bool {
			// Cloud Build has no GitHub variables, and the role must come from the step's --role-arn.
			return strings.HasPrefix(k, "GITHUB_") || strings.HasPrefix(k, "ACTIONS_") || k == "ECRPUSH_ROLE_ARN"
		})
		var args []string
		for _, a := range cfg.Steps[0].Args {
			// Cloud Build substitutes $BUILD_ID under triggers and `gcloud builds submit` alike; /workspace
			// is the build's working directory.
			a = strings.ReplaceAll(a, "$BUILD_ID", "b7f3c1d2-0000-4000-8000-000000000001")
			a = strings.ReplaceAll(a, "/workspace/", workspace+"/")
			args = append(args, a)
		}
		var source string
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "--source=oci-layout:"); ok {
				source = v
			}
		}
		digest := signedIndexLayout(t, source, "")
		builderOutput := t.TempDir()
		env["BUILDER_OUTPUT"] = builderOutput
		r := run(t, workspace, env, args...)
		if r.code != 0 {
			t.Fatalf("exit %d: %s\n%s", r.code, r.errLine, r.stderr)
		}
		var rep platform.Report
		if err := json.Unmarshal([]byte(readFile(t, filepath.Join(builderOutput, "output"))), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Digest != digest || rep.Report == nil || len(rep.Referrers) != 2 || rep.Findings == nil {
			t.Errorf("builder output: %+v", rep)
		}
		if len(rep.Replication) != 1 || rep.Replication[0].Referrers == nil || rep.Replication[0].Referrers.Present != 2 {
			t.Errorf("replication %+v", rep.Replication)
		}
	})
}
