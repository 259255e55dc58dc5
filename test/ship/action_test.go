package ship_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ecrpush/ecrpush/internal/cli"
	"github.com/ecrpush/ecrpush/sandbox"
)

// actionManifest is the part of action.yml the tests read.
type actionManifest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Inputs      map[string]struct {
		Description string `json:"description"`
		Required    bool   `json:"required"`
		Default     any    `json:"default"`
	} `json:"inputs"`
	Outputs map[string]struct {
		Description string `json:"description"`
	} `json:"outputs"`
	Runs struct {
		Using      string   `json:"using"`
		Image      string   `json:"image"`
		Args       []string `json:"args"`
		Entrypoint string   `json:"entrypoint"`
	} `json:"runs"`
}

func loadAction(t *testing.T) actionManifest {
	t.Helper()
	var a actionManifest
	readYAML(t, filepath.Join(root, "action.yml"), &a)
	if len(a.Inputs) == 0 {
		t.Fatal("action.yml declares no inputs")
	}
	return a
}

func (a actionManifest) inputNames() []string {
	var names []string
	for k := range a.Inputs {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// inputFlag is the push flag an input sets: the input's own name, except the names
// aws-actions/configure-aws-credentials users know.
func inputFlag(input string) string {
	switch input {
	case "role-to-assume":
		return "role-arn"
	case "aws-region":
		return "region"
	case "tags":
		return "tag"
	}
	return input
}

// declaredOutputs are the outputs the platform layer sets on GitHub.
var declaredOutputs = []string{"aws-account-id", "digest", "image-uri", "image-uris", "registry", "replication"}

// requiredInputs are the inputs the issue names: the manifest may add more, never drop these.
var requiredInputs = []string{"role-to-assume", "aws-region", "source", "repository", "destination", "tags",
	"replicate-to", "replication", "configure-replication", "replication-prefix", "replication-timeout",
	"destination-role-name", "create-repository", "tag-immutability", "scan-on-push", "kms-key", "platform", "jobs",
	"identity", "audience", "role-session-name", "role-duration"}

// flagsWithoutInput are push flags that deliberately have no input: --output picks text or JSON on a
// terminal, and on GitHub the outputs carry the JSON. internal/cli/inputs.go keeps the same list, to name
// them as flags in the Action's errors.
var flagsWithoutInput = map[string]bool{"output": true}

func TestActionManifest(t *testing.T) {
	a := loadAction(t)
	if a.Name == "" || a.Description == "" {
		t.Error("action.yml needs a name and a description (the marketplace shows them)")
	}
	if a.Runs.Using != "docker" || a.Runs.Image != "Dockerfile" || !reflect.DeepEqual(a.Runs.Args, []string{"push"}) || a.Runs.Entrypoint != "" {
		t.Errorf("runs = %+v, want using: docker, image: Dockerfile (a fresh clone builds it), args: [push], the Dockerfile's entrypoint", a.Runs)
	}
	if _, err := os.Stat(filepath.Join(root, a.Runs.Image)); err != nil {
		t.Errorf("runs.image: %v", err)
	}
	kebab := regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	for _, name := range a.inputNames() {
		in := a.Inputs[name]
		if !kebab.MatchString(name) {
			t.Errorf("input %q is not kebab-case", name)
		}
		if strings.TrimSpace(in.Description) == "" {
			t.Errorf("input %s has no description", name)
		}
		// GitHub passes a default as INPUT_<NAME> on every run, so a default would silently replace the flag's
		// own; the descriptions quote the flags' defaults instead.
		if in.Default != nil {
			t.Errorf("input %s declares default %v: leave it to the flag (say the default in the description)", name, in.Default)
		}
	}
	for _, name := range requiredInputs {
		if _, ok := a.Inputs[name]; !ok {
			t.Errorf("input %s is missing", name)
		}
	}
	var outs []string
	for k, o := range a.Outputs {
		outs = append(outs, k)
		if strings.TrimSpace(o.Description) == "" {
			t.Errorf("output %s has no description", k)
		}
	}
	sort.Strings(outs)
	if !reflect.DeepEqual(outs, declaredOutputs) {
		t.Errorf("outputs %v, want %v", outs, declaredOutputs)
	}
}

// TestActionCoversPushFlags checks the other direction: every flag `ecrpush push -h` lists has an input.
func TestActionCoversPushFlags(t *testing.T) {
	a := loadAction(t)
	r := run(t, t.TempDir(), map[string]string{}, "push", "-h")
	flagRe := regexp.MustCompile(`(?m)^\s+-{1,2}([a-z][a-z0-9-]*)`)
	flags := flagRe.FindAllStringSubmatch(r.stdout+r.stderr, -1)
	if len(flags) == 0 {
		t.Skipf("ecrpush push -h lists no flags (exit %d): cannot compare them with the inputs", r.code)
	}
	inputs := map[string]bool{}
	for name := range a.Inputs {
		inputs[inputFlag(name)] = true
	}
	for _, m := range flags {
		if f := m[1]; !inputs[f] && !flagsWithoutInput[f] {
			t.Errorf("push flag --%s has no action input", f)
		}
	}
}

// workflowFile is the part of a GitHub workflow the tests read.
type workflowFile struct {
	Permissions any `json:"permissions"`
	Jobs        map[string]struct {
		Permissions any            `json:"permissions"`
		Steps       []workflowStep `json:"steps"`
	} `json:"jobs"`
}

type workflowStep struct {
	ID   string         `json:"id"`
	Name string         `json:"name"`
	Uses string         `json:"uses"`
	Run  string         `json:"run"`
	With map[string]any `json:"with"`
}

// readmeWorkflow is the README's complete workflow example: the first ```yaml block using the action.
func readmeWorkflow(t *testing.T) (string, workflowFile) {
	t.Helper()
	for _, block := range fencedBlocks(readFile(t, filepath.Join(root, "README.md")), "yaml") {
		if !strings.Contains(block, "uses: ecrpush/ecrpush@") {
			continue
		}
		var w workflowFile
		if err := yaml.Unmarshal([]byte(block), &w); err != nil {
			t.Fatalf("README workflow example: %v", err)
		}
		return block, w
	}
	t.Fatal("README has no ```yaml workflow example with uses: ecrpush/ecrpush@")
	return "", workflowFile{}
}

// permission reads one permission from a permissions block (a map, or a blanket string like write-all).
func permission(p any, scope string) string {
	switch v := p.(type) {
	case map[string]any:
		s, _ := v[scope].(string)
		return s
	case string:
		return v
	}
	return ""
}

// inputValue renders a with: value as GitHub does (true, 8, multi-line strings as written).
func inputValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case float64:
		return fmt.Sprint(x)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// TestReadmeWorkflowRuns runs the README's workflow example as GitHub would run the action: every declared
// input as INPUT_<NAME> (empty when the step does not set it), the runner's GITHUB_OUTPUT and
// GITHUB_STEP_SUMMARY files, the job's OIDC token service (the sandbox's), and action.yml's args.
func TestReadmeWorkflowRuns(t *testing.T) {
	a := loadAction(t)
	_, wf := readmeWorkflow(t)

	var step *workflowStep
	var before []workflowStep
	for _, job := range wf.Jobs {
		for i, s := range job.Steps {
			if strings.HasPrefix(s.Uses, "ecrpush/ecrpush@") {
				step = &job.Steps[i]
				before = job.Steps[:i]
				if p := permission(job.Permissions, "id-token"); p != "" && p != "write" && p != "write-all" {
					t.Errorf("the job's id-token permission is %q: the action needs write", p)
				}
			}
		}
	}
	if step == nil {
		t.Fatal("the README workflow has no step using ecrpush/ecrpush")
	}
	if p := permission(wf.Permissions, "id-token"); p != "write" {
		t.Errorf("README workflow: permissions id-token is %q, want write (the job's OIDC token is the credential)", p)
	}
	if p := permission(wf.Permissions, "contents"); p != "read" {
		t.Errorf("README workflow: permissions contents is %q, want read", p)
	}

	sb := startSandbox(t, nil)
	workspace := t.TempDir()
	env := baseEnv(t, sb, nil)
	sha := sb.Config.GitHub.SHA
	with := map[string]string{}
	for k, v := range step.With {
		if _, ok := a.Inputs[k]; !ok {
			t.Errorf("the README passes input %q, which action.yml does not declare (GitHub warns and drops it)", k)
		}
		s := expressionRe.ReplaceAllStringFunc(inputValue(v), func(expr string) string {
			switch strings.TrimSpace(expressionRe.FindStringSubmatch(expr)[1]) {
			case "github.sha":
				return sha
			}
			t.Fatalf("input %s: the test knows no value for %s", k, expr)
			return ""
		})
		with[k] = s
	}
	// The example's role is the documentation account's ecrpush-ci role; the sandbox's must be used.
	if with["role-to-assume"] == "" {
		t.Fatal("the README example sets no role-to-assume")
	}
	with["role-to-assume"] = env["ECRPUSH_ROLE_ARN"]
	delete(env, "ECRPUSH_ROLE_ARN") // the input, not the sandbox's variable, must carry the role
	source := with["source"]
	var built bool
	file := strings.SplitN(strings.TrimPrefix(strings.TrimPrefix(source, "docker-archive:"), "oci-layout:"), ":", 2)[0]
	for _, s := range before {
		if strings.Contains(s.Run, "docker") && strings.Contains(s.Run, file) {
			built = true
		}
	}
	if !built {
		t.Errorf("no step before the action builds %s (the source %q)", file, source)
	}
	digest := writeSource(t, workspace, source)

	for _, name := range a.inputNames() {
		env[cli.InputName(name)] = with[name] // GitHub sets every declared input, empty when not given
	}
	outFile, summaryFile := filepath.Join(t.TempDir(), "output"), filepath.Join(t.TempDir(), "summary")
	for _, f := range []string{outFile, summaryFile} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env["GITHUB_OUTPUT"], env["GITHUB_STEP_SUMMARY"], env["GITHUB_ACTIONS"] = outFile, summaryFile, "true"
	env["GITHUB_WORKSPACE"] = workspace

	r := run(t, workspace, env, a.Runs.Args...)
	if r.code != 0 {
		t.Fatalf("the README's step exited %d: %s\n%s", r.code, r.errLine, r.stderr)
	}
	outputText, summary := readFile(t, outFile), readFile(t, summaryFile)
	outputs := githubOutputs(t, outputText)
	for name := range a.Outputs {
		if strings.TrimSpace(outputs[name]) == "" {
			t.Errorf("declared output %s was not set", name)
		}
	}
	if outputs["digest"] != digest {
		t.Errorf("digest output %q, want %s", outputs["digest"], digest)
	}
	if outputs["aws-account-id"] != sandbox.CIAccount {
		t.Errorf("aws-account-id output %q", outputs["aws-account-id"])
	}
	var uris []string
	decodeJSON(t, "the image-uris output", outputs["image-uris"], &uris)
	for _, tag := range strings.Fields(with["tags"]) {
		if !strings.Contains(outputs["image-uris"], ":"+tag+`"`) {
			t.Errorf("image-uris %v lacks tag %s", uris, tag)
		}
	}
	if !strings.HasPrefix(outputs["image-uri"], outputs["registry"]+"/"+with["repository"]) {
		t.Errorf("image-uri %q is not in registry %q, repository %q", outputs["image-uri"], outputs["registry"], with["repository"])
	}
	var rows []replicationRow
	decodeJSON(t, "the replication output", outputs["replication"], &rows)
	checkReplication(t, rows, destinations(with["replicate-to"], sandbox.CIAccount), digest)
	for _, row := range rows {
		if !strings.Contains(summary, row.Account) || !strings.Contains(summary, row.Region) {
			t.Errorf("the step summary does not list %s %s:\n%s", row.Account, row.Region, summary)
		}
	}
	// Workflow commands go to stderr; the runner reads both streams for them.
	if !strings.Contains(r.stderr, "::add-mask::") {
		t.Error("the step masked nothing, yet it handled credentials and a registry password")
	}
	noSecrets(t, sb.Secrets(), r.stdout, map[string]string{"stderr": r.stderr, "GITHUB_OUTPUT": outputText, "GITHUB_STEP_SUMMARY": summary})
}

// TestActionInputsReachFlags sets each input to a value its flag rejects, one at a time on top of a valid
// step, and expects the one-line error to name that input as the workflow says it ("input aws-region", not
// --region; or, where the message does not, to quote the value): an input that maps to nothing is ignored
// and fails the test. Nothing may be written before the error.
func TestActionInputsReachFlags(t *testing.T) {
	a := loadAction(t)
	cases := map[string]struct {
		bad  string
		with map[string]string // other inputs the case needs
		want string            // what the error must contain, when not the flag's --name
	}{
		"role-to-assume":            {bad: "arn:aws:iam::111122223333:user/not-a-role"},
		"aws-region":                {bad: "mars-north"},
		"source":                    {bad: "ftp://example.invalid/app", want: `source "ftp://example.invalid/app"`},
		"repository":                {bad: "Not_A_Repository!"},
		"destination":               {bad: "registry.example.com/app"},
		"tags":                      {bad: "not a tag!"},
		"replicate-to":              {bad: "prod:us-east-1"},
		"replication":               {bad: "teleport"},
		"configure-replication":     {bad: "perhaps"},
		"replication-prefix":        {bad: "Not A Prefix!"},
		"replication-timeout":       {bad: "soon"},
		"destination-role-name":     {bad: "not a role!", with: map[string]string{"replicate-to": "444455556666:us-east-1", "replication": "copy"}},
		"create-repository":         {bad: "perhaps"},
		"tag-immutability":          {bad: "perhaps"},
		"scan-on-push":              {bad: "perhaps"},
		"kms-key":                   {bad: "alias/not-an-arn"},
		"platform":                  {bad: "linux"},
		"jobs":                      {bad: "many"},
		"dry-run":                   {bad: "perhaps"},
		"retries":                   {bad: "99"},
		"compression-level":         {bad: "0"},
		"lifecycle-policy":          {bad: "/no/such/policy.json"},
		"repository-tags":           {bad: "no-equals-sign"},
		"template-role-name":        {bad: "not a role!"},
		"replication-kms-key":       {bad: "no-equals-sign"},
		"restore-archived":          {bad: "perhaps"},
		"referrers":                 {bad: "everything-please"},
		"require-referrers":         {bad: "perhaps"},
		"require-signature":         {bad: "perhaps"},
		"fail-on-severity":          {bad: "SEVERE"},
		"identity":                  {bad: "telepathy"},
		"audience":                  {bad: "not-the-audience-the-role-trusts"},
		"role-session-name":         {bad: "not a session name!"},
		"role-duration":             {bad: "forever"},
		"gcp-service-account":       {bad: "not-an-email", with: map[string]string{"identity": "gcp"}, want: "ID token for not-an-email"},
		"web-identity-token-file":   {bad: "/nonexistent/ecrpush-token", with: map[string]string{"identity": "file"}},
		"source-google-credentials": {bad: "/nonexistent/google-credentials.json", want: "/nonexistent/google-credentials.json"},
		"source-google-hosts":       {bad: "https://not-a-host/"},
	}
	for _, name := range a.inputNames() {
		if _, ok := cases[name]; !ok {
			t.Errorf("input %s has no case here: add a value its flag rejects", name)
		}
	}
	sb := startSandbox(t, nil)
	workspace := t.TempDir()
	source := "oci-layout:image:v1"
	writeSource(t, workspace, source)
	valid := map[string]string{"role-to-assume": "", "aws-region": "us-east-1", "source": source, "repository": "team/app", "tags": "v1"}
	for name, c := range cases {
		if _, ok := a.Inputs[name]; !ok {
			t.Errorf("case %s: action.yml has no such input", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			env := baseEnv(t, sb, nil)
			valid["role-to-assume"] = env["ECRPUSH_ROLE_ARN"]
			delete(env, "ECRPUSH_ROLE_ARN")
			env["GITHUB_OUTPUT"] = filepath.Join(t.TempDir(), "output")
			for _, in := range a.inputNames() {
				env[cli.InputName(in)] = valid[in]
			}
			for k, v := range c.with {
				env[cli.InputName(k)] = v
			}
			env[cli.InputName(name)] = c.bad
			sb.Log.Reset()
			r := run(t, workspace, env, a.Runs.Args...)
			// The error names the input the workflow author wrote, not the flag behind it.
			want := c.want
			if want == "" {
				want = "input " + name
			}
			t.Logf("%s=%q: %s", cli.InputName(name), c.bad, r.errLine)
			if r.code != 2 || !strings.Contains(r.errLine, want) {
				t.Errorf("%s=%q: exit %d, error %q; want exit 2 and an error with %q\n%s", cli.InputName(name), c.bad, r.code, r.errLine, want, r.stderr)
			}
			if w := sb.Log.Writes(); len(w) != 0 {
				t.Errorf("%d writes before the error, first %s %s", len(w), w[0].Method, w[0].Path)
			}
		})
	}
}

// TestReadmeDocumentsInputs checks the README's input table has a row for every input, naming its flag.
func TestReadmeDocumentsInputs(t *testing.T) {
	a := loadAction(t)
	readme := readFile(t, filepath.Join(root, "README.md"))
	for _, name := range a.inputNames() {
		row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(name) + "` \\| `--" + regexp.QuoteMeta(inputFlag(name)) + "` \\|.*\\S.*\\|$")
		if !row.MatchString(readme) {
			t.Errorf("README: no input table row \"| `%s` | `--%s` | ... |\"", name, inputFlag(name))
		}
	}
	for name := range a.Outputs {
		if !strings.Contains(readme, "| `"+name+"` |") {
			t.Errorf("README: output %s is not in the outputs table", name)
		}
	}
	// The prebuilt image is documented in the form release.yml fills in.
	if !strings.Contains(readme, "docker://ghcr.io/ecrpush/ecrpush@sha256:<digest>") {
		t.Error("README: the prebuilt image placeholder docker://ghcr.io/ecrpush/ecrpush@sha256:<digest> is missing")
	}
}

// TestReadmeTrustPolicies checks that the trust policies pasted in the README are what the commands above
// them print today.
func TestReadmeTrustPolicies(t *testing.T) {
	readme := readFile(t, filepath.Join(root, "README.md"))
	shells, jsons := fencedBlocks(readme, "sh"), fencedBlocks(readme, "json")
	checked := 0
	for _, cmd := range shells {
		line := strings.TrimSpace(cmd)
		if !strings.HasPrefix(line, "go run . trust-policy ") || strings.Contains(line, "\n") {
			continue
		}
		// The printed policy is the json block that follows the command in the README.
		at := strings.Index(readme, cmd)
		var want string
		for _, j := range jsons {
			if i := strings.Index(readme[at:], j); i >= 0 {
				want = j
				break
			}
		}
		if want == "" {
			t.Errorf("README: no json block after %q", line)
			continue
		}
		r := run(t, t.TempDir(), map[string]string{}, strings.Fields(strings.TrimPrefix(line, "go run . "))...)
		if r.code != 0 {
			t.Fatalf("%s: exit %d %s", line, r.code, r.errLine)
		}
		var got, doc any
		decodeJSON(t, line, r.stdout, &got)
		decodeJSON(t, "the README's policy after "+line, want, &doc)
		if !reflect.DeepEqual(got, doc) {
			t.Errorf("README: the policy after %q is not what it prints:\n%s", line, r.stdout)
		}
		checked++
	}
	if checked < 2 {
		t.Errorf("checked %d trust-policy commands in the README, want the GitHub and the Google one", checked)
	}
}
