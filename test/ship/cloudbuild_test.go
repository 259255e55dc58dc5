package ship_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ecrpush/ecrpush/sandbox"
)

// cloudBuild is the part of a Cloud Build config the tests read.
type cloudBuild struct {
	Steps []struct {
		ID         string   `json:"id"`
		Name       string   `json:"name"`
		Entrypoint string   `json:"entrypoint"`
		Args       []string `json:"args"`
		Env        []string `json:"env"`
		Dir        string   `json:"dir"`
	} `json:"steps"`
	Images         []string          `json:"images"`
	ServiceAccount string            `json:"serviceAccount"`
	Substitutions  map[string]string `json:"substitutions"`
	Options        struct {
		Logging              string `json:"logging"`
		DynamicSubstitutions bool   `json:"dynamicSubstitutions"`
	} `json:"options"`
}

// cloudBuildDefaults are the built-in substitutions a triggered build has, with test values.
var cloudBuildDefaults = map[string]string{
	"PROJECT_ID":     "example-project",
	"PROJECT_NUMBER": "123456789012",
	"BUILD_ID":       "b1d0a6e2-0000-4000-8000-000000000001",
	"LOCATION":       "us-central1",
	"COMMIT_SHA":     "0123456789abcdef0123456789abcdef01234567",
	"SHORT_SHA":      "0123456",
	"REVISION_ID":    "0123456789abcdef0123456789abcdef01234567",
	"BRANCH_NAME":    "main",
	"TAG_NAME":       "",
	"REPO_NAME":      "app",
	"REF_NAME":       "main",
	"TRIGGER_NAME":   "push-main",
}

var substitutionRe = regexp.MustCompile(`\$\$|\$\{([A-Z_][A-Z0-9_]*)\}|\$([A-Z_][A-Z0-9_]*)`)

// substitute expands Cloud Build substitutions ($VAR, ${VAR}; $$ is a literal $), failing on unknown ones
// as Cloud Build does.
func substitute(t *testing.T, s string, subs map[string]string) string {
	t.Helper()
	for i := 0; i < 3 && substitutionRe.MatchString(strings.ReplaceAll(s, "$$", "")); i++ { // dynamic substitutions nest
		s = substitutionRe.ReplaceAllStringFunc(s, func(m string) string {
			if m == "$$" {
				return m
			}
			sm := substitutionRe.FindStringSubmatch(m)
			key := sm[1] + sm[2]
			v, ok := subs[key]
			if !ok {
				t.Fatalf("substitution %s in %q is not defined", m, s)
			}
			return v
		})
	}
	return strings.ReplaceAll(s, "$$", "$")
}

func loadCloudBuild(t *testing.T, path string) (cloudBuild, map[string]string) {
	t.Helper()
	var b cloudBuild
	readYAML(t, path, &b)
	subs := map[string]string{}
	for k, v := range cloudBuildDefaults {
		subs[k] = v
	}
	for k, v := range b.Substitutions {
		if !strings.HasPrefix(k, "_") {
			t.Errorf("%s: user substitution %s must start with _", path, k)
		}
		subs[k] = v
	}
	for k, v := range b.Substitutions {
		subs[k] = substitute(t, v, subs)
	}
	return b, subs
}

// isEcrpushStep tells the steps that run the ecrpush builder.
func isEcrpushStep(image string) bool {
	return strings.Contains(image, "/ecrpush:") || strings.Contains(image, "/ecrpush@") || strings.HasSuffix(image, "/ecrpush")
}

// TestCloudBuildExamples runs every ecrpush step of every cloudbuild/examples/*.yaml (and of the README's
// Cloud Build example) as Cloud Build would: /workspace is a temp dir holding the image the earlier steps
// would have built, BUILDER_OUTPUT is set, GITHUB_ACTIONS is not, and the metadata server is the sandbox's,
// answering for the build's service account.
func TestCloudBuildExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, "cloudbuild", "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cloudbuild/examples/*.yaml (%v)", err)
	}
	readmeExample := ""
	for _, block := range fencedBlocks(readFile(t, filepath.Join(root, "README.md")), "yaml") {
		if strings.Contains(block, "gcr.io/cloud-builders/docker") {
			readmeExample = filepath.Join(t.TempDir(), "README-cloudbuild.yaml")
			if err := os.WriteFile(readmeExample, []byte(block), 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, readmeExample)
		}
	}
	if readmeExample == "" {
		t.Error("README: no Cloud Build example (a ```yaml block using gcr.io/cloud-builders/docker)")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runCloudBuildExample(t, file) })
	}
}

func runCloudBuildExample(t *testing.T, file string) {
	b, subs := loadCloudBuild(t, file)
	sa := substitute(t, b.ServiceAccount, subs)
	email := strings.TrimPrefix(sa, "projects/"+subs["PROJECT_ID"]+"/serviceAccounts/")
	if sa == "" || email == sa || !strings.HasSuffix(email, ".iam.gserviceaccount.com") {
		t.Errorf("serviceAccount %q: set projects/PROJECT/serviceAccounts/EMAIL (Cloud Build gives no ID tokens to its default account)", b.ServiceAccount)
	}
	if b.Options.Logging == "" {
		t.Error("options.logging is unset: Cloud Build refuses a user-specified serviceAccount without CLOUD_LOGGING_ONLY or a logs bucket")
	}
	if !strings.HasSuffix(file, "README-cloudbuild.yaml") {
		text := readFile(t, file)
		for _, doc := range []string{"roles/iam.serviceAccountOpenIdTokenCreator", "roles/logging.logWriter", "trust-policy --google-service-account-id"} {
			if !strings.Contains(text, doc) {
				t.Errorf("the comments do not document %s", doc)
			}
		}
	}

	ran := 0
	for i, step := range b.Steps {
		image := substitute(t, step.Name, subs)
		if !isEcrpushStep(image) {
			continue
		}
		ran++
		if step.Entrypoint != "" {
			t.Errorf("step %d overrides the builder's entrypoint", i)
		}
		if i == 0 || !strings.Contains(b.Steps[i-1].Name, "docker") {
			t.Errorf("step %d: no docker build step precedes the ecrpush step", i)
		}
		sb := startSandbox(t, func(c *sandbox.Config) {
			c.GCP.ProjectID = subs["PROJECT_ID"]
			c.GCP.ServiceAccountEmail = email
		})
		workspace := t.TempDir()
		inWorkspace := func(s string) string { return strings.ReplaceAll(s, "/workspace", workspace) }
		var args []string
		for _, a := range step.Args {
			args = append(args, inWorkspace(substitute(t, a, subs)))
		}
		source, repo, tags, to := flagValue(args, "source"), flagValue(args, "repository"), flagValue(args, "tag"), flagValue(args, "replicate-to")
		if source == "" || repo == "" || tags == "" || to == "" || flagValue(args, "role-arn") == "" {
			t.Fatalf("step %d args %q: want --source, --repository, --tag, --role-arn and --replicate-to", i, args)
		}
		digest := writeSource(t, workspace, source)

		env := baseEnv(t, sb, func(k string) bool {
			// Cloud Build has no GitHub variables, and the role must come from the step's --role-arn.
			return strings.HasPrefix(k, "GITHUB_") || strings.HasPrefix(k, "ACTIONS_") || k == "ECRPUSH_ROLE_ARN"
		})
		output := filepath.Join(t.TempDir(), "builder-output")
		env["BUILDER_OUTPUT"] = output
		for _, kv := range step.Env {
			k, v, _ := strings.Cut(substitute(t, kv, subs), "=")
			env[k] = inWorkspace(v)
		}
		dir := workspace
		if step.Dir != "" {
			dir = filepath.Join(workspace, step.Dir)
		}
		r := run(t, dir, env, args...)
		if r.code != 0 {
			t.Fatalf("step %d exited %d: %s\n%s", i, r.code, r.errLine, r.stderr)
		}
		text := readFile(t, filepath.Join(output, "output"))
		if len(text) > 50*1024 {
			t.Errorf("$BUILDER_OUTPUT/output is %d bytes; Cloud Build keeps 50 KB", len(text))
		}
		var rep pushReport
		decodeJSON(t, "$BUILDER_OUTPUT/output", text, &rep)
		if rep.Digest != digest {
			t.Errorf("output digest %q, want %s", rep.Digest, digest)
		}
		if len(rep.Images) == 0 || !strings.Contains(rep.Images[0].URI, "/"+repo+"@"+digest) || !strings.Contains(strings.Join(rep.Images[0].Tags, ","), subs["SHORT_SHA"]) {
			t.Errorf("output images %+v: want %s@%s tagged %s", rep.Images, repo, digest, subs["SHORT_SHA"])
		}
		checkReplication(t, rep.Replication, destinations(to, sandbox.CIAccount), digest)
		if strings.Contains(r.stdout, "::") {
			t.Errorf("GitHub workflow commands on Cloud Build:\n%s", r.stdout)
		}
		noSecrets(t, sb.Secrets(), r.stdout, map[string]string{"stderr": r.stderr, "$BUILDER_OUTPUT/output": text})
	}
	if ran == 0 {
		t.Fatal("no ecrpush step")
	}
}

// flagValue is the value of --name in args (--name VALUE or --name=VALUE), repeated values comma-joined.
func flagValue(args []string, name string) string {
	var vals []string
	for i, a := range args {
		switch {
		case a == "--"+name && i+1 < len(args):
			vals = append(vals, args[i+1])
		case strings.HasPrefix(a, "--"+name+"="):
			vals = append(vals, strings.TrimPrefix(a, "--"+name+"="))
		}
	}
	return strings.Join(vals, ",")
}

// TestCloudBuildPipeline checks the builder's own pipeline: it runs the README's test command, builds the
// image, runs the built image with --help before publishing it, and that smoke step passes.
func TestCloudBuildPipeline(t *testing.T) {
	b, subs := loadCloudBuild(t, filepath.Join(root, "cloudbuild", "cloudbuild.yaml"))
	var order []string
	for _, s := range b.Steps {
		name, args := substitute(t, s.Name, subs), strings.Join(s.Args, " ")
		switch {
		case strings.HasPrefix(name, "golang:1.26") && s.Entrypoint == "go" && args == "test ./...":
			order = append(order, "test")
		case strings.Contains(name, "cloud-builders/docker") && strings.HasPrefix(args, "build "):
			order = append(order, "build")
			if !strings.Contains(args, "VERSION=") {
				t.Error("the image build does not pass the VERSION build argument")
			}
		case isEcrpushStep(name) && args == "--help":
			order = append(order, "smoke")
			r := run(t, t.TempDir(), map[string]string{}, s.Args...)
			if r.code != 0 || !strings.Contains(r.stdout, "push") {
				t.Errorf("the smoke step's ecrpush --help: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		case strings.Contains(name, "cloud-builders/docker") && strings.HasPrefix(args, "push"):
			order = append(order, "publish")
		}
	}
	if strings.Join(order, " ") != "test build smoke publish" {
		t.Errorf("cloudbuild.yaml steps are %v, want test, build, smoke (--help), publish", order)
	}
	raw, err := os.ReadFile(filepath.Join(root, "cloudbuild", "cloudbuild.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := yaml.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	for k := range generic {
		switch k {
		case "steps", "images", "substitutions", "options", "timeout", "tags", "serviceAccount", "availableSecrets", "logsBucket", "artifacts":
		default:
			t.Errorf("cloudbuild.yaml: %q is not a Cloud Build config field", k)
		}
	}
}
