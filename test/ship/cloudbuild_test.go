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

// Cloud Build's built-in substitutions (cloud.google.com/build/docs/configuring-builds/substitute-variable-values):
// every build has these...
var cloudBuildAlways = map[string]string{
	"PROJECT_ID":     "example-project",
	"PROJECT_NUMBER": "123456789012",
	"BUILD_ID":       "b1d0a6e2-0000-4000-8000-000000000001",
	"LOCATION":       "us-central1",
}

// ...and a build a trigger starts also has these. Under `gcloud builds submit` they exist but are empty,
// which is how `--tag $SHORT_SHA` became `--tag ""`.
var cloudBuildTrigger = map[string]string{
	"COMMIT_SHA":                "0123456789abcdef0123456789abcdef01234567",
	"SHORT_SHA":                 "0123456",
	"REVISION_ID":               "0123456789abcdef0123456789abcdef01234567",
	"BRANCH_NAME":               "main",
	"TAG_NAME":                  "",
	"REPO_NAME":                 "app",
	"REPO_FULL_NAME":            "example/app",
	"REF_NAME":                  "main",
	"TRIGGER_NAME":              "push-main",
	"TRIGGER_BUILD_CONFIG_PATH": "cloudbuild.yaml",
	"SERVICE_ACCOUNT_EMAIL":     "ecrpush-builder@example-project.iam.gserviceaccount.com",
	"SERVICE_ACCOUNT":           "projects/example-project/serviceAccounts/ecrpush-builder@example-project.iam.gserviceaccount.com",
}

// cloudBuildModes are the two ways a config runs.
var cloudBuildModes = []string{"trigger", "submit"}

var substitutionRe = regexp.MustCompile(`\$\$|\$\{([A-Z_][A-Z0-9_]*)\}|\$([A-Z_][A-Z0-9_]*)`)

// substitute expands Cloud Build substitutions ($VAR, ${VAR}; $$ is a literal $), failing on unknown ones
// as Cloud Build does.
func substitute(t *testing.T, s string, subs map[string]string) string {
	t.Helper()
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
	return strings.ReplaceAll(s, "$$", "$")
}

// loadCloudBuild reads a config and the substitutions a build of it has in mode: the built-ins, then the
// user substitutions, whose values refer to others only with options.dynamicSubstitutions (without it
// Cloud Build keeps "${BUILD_ID}" as written).
func loadCloudBuild(t *testing.T, path, mode string) (cloudBuild, map[string]string) {
	t.Helper()
	var b cloudBuild
	readYAML(t, path, &b)
	subs := map[string]string{}
	for k, v := range cloudBuildAlways {
		subs[k] = v
	}
	for k, v := range cloudBuildTrigger {
		if mode == "submit" {
			v = ""
		}
		subs[k] = v
	}
	for k, v := range b.Substitutions {
		if !strings.HasPrefix(k, "_") {
			t.Errorf("%s: user substitution %s must start with _", path, k)
		}
		subs[k] = v
	}
	return b, resubstitute(t, b, subs)
}

// resubstitute sets the user substitutions from b over subs, expanding references between them only with
// options.dynamicSubstitutions (without it Cloud Build keeps "${BUILD_ID}" as written).
func resubstitute(t *testing.T, b cloudBuild, subs map[string]string) map[string]string {
	t.Helper()
	for k, v := range b.Substitutions {
		subs[k] = v
	}
	if b.Options.DynamicSubstitutions {
		for i := 0; i < 3; i++ { // user substitutions may refer to each other
			for k := range b.Substitutions {
				subs[k] = substitute(t, subs[k], subs)
			}
		}
	}
	return subs
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
		for _, mode := range cloudBuildModes {
			t.Run(filepath.Base(file)+"/"+mode, func(t *testing.T) { runCloudBuildExample(t, file, mode) })
		}
	}
}

var tagRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func runCloudBuildExample(t *testing.T, file, mode string) {
	b, subs := loadCloudBuild(t, file, mode)
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
		if source == "" || repo == "" || to == "" || flagValue(args, "role-arn") == "" {
			t.Fatalf("step %d args %q: want --source, --repository, --tag, --role-arn and --replicate-to", i, args)
		}
		for _, tag := range strings.Split(tags, ",") {
			if !tagRe.MatchString(tag) {
				t.Fatalf("step %d: --tag is %q when %s: use a substitution every build has ($BUILD_ID, or a _TAG with a default)", i, tags, map[string]string{"trigger": "a trigger runs it", "submit": "run with gcloud builds submit"}[mode])
			}
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
		if len(text) >= 50_000 {
			t.Errorf("$BUILDER_OUTPUT/output is %d bytes; Cloud Build keeps the first 50KB", len(text))
		}
		var rep pushReport
		decodeJSON(t, "$BUILDER_OUTPUT/output", text, &rep)
		if rep.Digest != digest {
			t.Errorf("output digest %q, want %s", rep.Digest, digest)
		}
		if len(rep.Images) == 0 || !strings.Contains(rep.Images[0].URI, "/"+repo+"@"+digest) || strings.Join(rep.Images[0].Tags, ",") != tags {
			t.Errorf("output images %+v: want %s@%s tagged %s", rep.Images, repo, digest, tags)
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

// TestCloudBuildPipeline checks the builder's own pipeline, as a trigger and under `gcloud builds submit`: it
// runs the README's test command, builds the image with BuildKit (the Dockerfile's FROM --platform needs it),
// runs the built image (version, --help, demo) before Cloud Build publishes it through images:, and the
// smoke commands pass on the binary built as the Dockerfile builds it.
func TestCloudBuildPipeline(t *testing.T) {
	for _, mode := range cloudBuildModes {
		t.Run(mode, func(t *testing.T) {
			b, subs := loadCloudBuild(t, filepath.Join(root, "cloudbuild", "cloudbuild.yaml"), mode)
			if mode == "submit" {
				// The README's command: its --substitutions replace the defaults (and what refers to them).
				cmd := regexp.MustCompile(`(?m)^gcloud builds submit --config cloudbuild/cloudbuild\.yaml --substitutions (\S+)$`).FindStringSubmatch(readFile(t, filepath.Join(root, "README.md")))
				if cmd == nil {
					t.Fatal("README: no `gcloud builds submit --config cloudbuild/cloudbuild.yaml --substitutions …` line")
				}
				for _, kv := range strings.Split(cmd[1], ",") {
					k, v, _ := strings.Cut(kv, "=")
					if _, ok := b.Substitutions[k]; !ok {
						t.Errorf("README passes %s, which cloudbuild.yaml does not declare (Cloud Build refuses it)", k)
					}
					b.Substitutions[k] = v
				}
				subs = resubstitute(t, b, subs)
			}
			var order []string
			var built []string
			for _, s := range b.Steps {
				name := substitute(t, s.Name, subs)
				var args []string
				for _, a := range s.Args {
					args = append(args, substitute(t, a, subs))
				}
				joined := strings.Join(args, " ")
				switch {
				case strings.HasPrefix(name, "golang:") && s.Entrypoint == "go" && joined == "test ./...":
					order = append(order, "test")
				case strings.HasPrefix(joined, "buildx build "):
					order = append(order, "build")
					if !regexp.MustCompile(`^docker:[0-9.]+-cli@sha256:[0-9a-f]{64}$`).MatchString(name) {
						t.Errorf("the build step runs in %s: use Docker's CLI image (it carries buildx), pinned by digest", name)
					}
					if !strings.Contains(joined, "--load") || !strings.Contains(joined, "VERSION=") {
						t.Error("the build does not load the image into the engine or pass VERSION")
					}
					for i, a := range args {
						if a == "-t" && i+1 < len(args) {
							built = append(built, args[i+1])
						}
					}
				case s.Entrypoint == "sh" && strings.Contains(joined, "docker run"):
					order = append(order, "smoke")
					script := args[len(args)-1]
					image := subs["_IMAGE"] + ":" + subs["_VERSION"]
					if !containsString(built, image) {
						t.Errorf("the smoke step runs %s, which the build step did not tag (%v)", image, built)
					}
					// Each docker run of the built image, run on the binary built as the Dockerfile builds it
					// (VERSION stamped the same way).
					for _, line := range strings.Split(script, "\n") {
						line = strings.TrimSpace(line)
						if line == "" {
							continue
						}
						m := regexp.MustCompile(`docker run --rm (\S+) ([a-z-]+)`).FindStringSubmatch(line)
						if m == nil || m[1] != image {
							t.Errorf("smoke line %q does not run the built image %s", line, image)
							continue
						}
						r := run(t, t.TempDir(), map[string]string{"HOME": t.TempDir()}, m[2])
						if r.code != 0 {
							t.Errorf("smoke %q: exit %d %s", line, r.code, r.errLine)
						}
						switch m[2] {
						case "version":
							// The binary under test is stamped testVersion; the image is stamped _VERSION.
							if !strings.Contains(line, `= "ecrpush `+subs["_VERSION"]+`"`) || r.stdout != "ecrpush "+testVersion+"\n" {
								t.Errorf("the version check %q does not compare `ecrpush VERSION` exactly (binary says %q)", line, r.stdout)
							}
						case "--help":
							if !regexp.MustCompile(`(?m)^  push `).MatchString(r.stdout) || !strings.Contains(line, "grep -q '^  push '") {
								t.Errorf("--help check %q does not hold on %q", line, r.stdout)
							}
						}
					}
					for _, want := range []string{" version)", " --help ", " demo"} {
						if !strings.Contains(script, want) {
							t.Errorf("the smoke step does not run%s", want)
						}
					}
				}
			}
			if len(b.Images) > 0 {
				order = append(order, "publish")
				for _, im := range b.Images {
					if img := substitute(t, im, subs); !containsString(built, img) || strings.HasSuffix(img, ":") {
						t.Errorf("images: %q is not a tag the build step made (%v)", img, built)
					}
				}
			}
			if strings.Join(order, " ") != "test build smoke publish" {
				t.Errorf("cloudbuild.yaml steps are %v, want test, build (buildx), smoke (docker run version, --help, demo), publish (images:)", order)
			}
		})
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

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
