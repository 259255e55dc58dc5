package ship_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ecrpush/ecrpush/sandbox"
)

// k8sObject is the part of the recipe's Kubernetes objects the test reads.
type k8sObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Rules []struct {
		Resources     []string `json:"resources"`
		ResourceNames []string `json:"resourceNames"`
		Verbs         []string `json:"verbs"`
	} `json:"rules"`
	RoleRef struct {
		Kind, Name string
	} `json:"roleRef"`
	Subjects []struct {
		Kind, Name, Namespace string
	} `json:"subjects"`
	Spec struct {
		Schedule    string `json:"schedule"`
		JobTemplate struct {
			Spec struct {
				Template struct {
					Spec struct {
						ServiceAccountName string         `json:"serviceAccountName"`
						InitContainers     []k8sContainer `json:"initContainers"`
						Containers         []k8sContainer `json:"containers"`
						Volumes            []struct {
							Name string `json:"name"`
						} `json:"volumes"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		} `json:"jobTemplate"`
	} `json:"spec"`
}

type k8sContainer struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Command []string `json:"command"`
	Args    []string `json:"args"`
	Env     []struct {
		Name, Value string
	} `json:"env"`
	VolumeMounts []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
	} `json:"volumeMounts"`
}

// TestReadmeKubeSecretRecipe checks the README's CronJob recipe as a cluster would run it: the objects agree
// with each other (service account, RBAC, namespace and Secret name), every image but ecrpush's is pinned by
// digest and is Kubernetes' own kubectl, the job is started once at install, and the init container's
// command, run with its environment and mounts against the sandbox, writes a Secret that decodes.
func TestReadmeKubeSecretRecipe(t *testing.T) {
	readme := readFile(t, filepath.Join(root, "README.md"))
	var recipe string
	for _, b := range fencedBlocks(readme, "yaml") {
		if strings.Contains(b, "kind: CronJob") {
			recipe = b
		}
	}
	if recipe == "" {
		t.Fatal("README: no CronJob recipe")
	}
	objs := map[string]k8sObject{}
	for _, doc := range strings.Split(recipe, "\n---\n") {
		var o k8sObject
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("recipe document does not decode: %v\n%s", err, doc)
		}
		objs[o.Kind] = o
	}
	cron, sa, role, binding := objs["CronJob"], objs["ServiceAccount"], objs["Role"], objs["RoleBinding"]
	pod := cron.Spec.JobTemplate.Spec.Template.Spec
	if cron.APIVersion != "batch/v1" || pod.ServiceAccountName != sa.Metadata.Name || cron.Metadata.Namespace != sa.Metadata.Namespace {
		t.Errorf("the CronJob (%s, %s/%s) does not run as the recipe's ServiceAccount %s/%s", cron.APIVersion, cron.Metadata.Namespace, pod.ServiceAccountName, sa.Metadata.Namespace, sa.Metadata.Name)
	}
	if len(binding.Subjects) != 1 || binding.Subjects[0].Name != sa.Metadata.Name || binding.Subjects[0].Namespace != sa.Metadata.Namespace ||
		binding.RoleRef.Name != role.Metadata.Name || binding.Metadata.Namespace != role.Metadata.Namespace {
		t.Errorf("the RoleBinding does not bind the Role to the ServiceAccount: %+v", binding)
	}
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		t.Fatalf("want one init container (ecrpush) and one container (kubectl), got %d and %d", len(pod.InitContainers), len(pod.Containers))
	}
	init, apply := pod.InitContainers[0], pod.Containers[0]
	if !strings.HasPrefix(init.Image, "ghcr.io/ecrpush/ecrpush:") {
		t.Errorf("init container image %s is not ecrpush's", init.Image)
	}
	if !regexp.MustCompile(`^registry\.k8s\.io/kubectl:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}$`).MatchString(apply.Image) {
		t.Errorf("kubectl image %s: use Kubernetes' own registry.k8s.io/kubectl, pinned by digest (a tag can vanish: bitnami/kubectl:1.32 did)", apply.Image)
	}
	if strings.Join(apply.Command, " ") != "kubectl apply -f /out/secret.yaml" {
		t.Errorf("the kubectl container runs %q", apply.Command)
	}
	namespace, secret := flagValue(init.Args, "namespace"), flagValue(init.Args, "name")
	if role.Metadata.Namespace != namespace {
		t.Errorf("the Role is in %s but the Secret goes to %s", role.Metadata.Namespace, namespace)
	}
	var canUpdate, canCreate bool
	for _, r := range role.Rules {
		verbs := "," + strings.Join(r.Verbs, ",") + ","
		if strings.Contains(strings.Join(r.ResourceNames, ","), secret) && strings.Contains(verbs, ",get,") && strings.Contains(verbs, ",patch,") {
			canUpdate = true
		}
		if len(r.ResourceNames) == 0 && strings.Contains(verbs, ",create,") {
			canCreate = true
		}
	}
	if !canUpdate || !canCreate {
		t.Errorf("the Role lets kubectl apply create=%v and get+patch %s=%v", canCreate, secret, canUpdate)
	}
	// Run once at install: the CronJob alone waits for its schedule.
	initJob := regexp.MustCompile(`(?m)^kubectl -n (\S+) create job \S+ --from=cronjob/(\S+)$`).FindStringSubmatch(readme)
	if initJob == nil || initJob[1] != cron.Metadata.Namespace || initJob[2] != cron.Metadata.Name {
		t.Errorf("README: no `kubectl -n %s create job … --from=cronjob/%s` right after the recipe (got %v)", cron.Metadata.Namespace, cron.Metadata.Name, initJob)
	}

	// The init container, as the kubelet starts it: the image's entrypoint (ecrpush) with args, the env, and
	// its mounts (the projected token, the in-memory /out) as directories here.
	cfg := sandbox.DefaultConfig()
	cfg.Accounts[0].Roles[0].MaxSessionDuration = sandbox.Dur(12 * time.Hour)
	sb := startSandbox(t, func(c *sandbox.Config) {
		*c = *cfg
		c.StorageDir = t.TempDir()
		c.ReplicationDelay = sandbox.Dur(100 * time.Millisecond)
	})
	mounts := map[string]string{}
	for _, m := range init.VolumeMounts {
		mounts[m.MountPath] = t.TempDir()
	}
	inMount := func(p string) string {
		for mp, dir := range mounts {
			if rest, ok := strings.CutPrefix(p, mp+"/"); ok {
				return filepath.Join(dir, rest)
			}
		}
		return p
	}
	env := baseEnv(t, sb, func(k string) bool {
		return strings.HasPrefix(k, "GITHUB_") || strings.HasPrefix(k, "ACTIONS_") || k == "ECRPUSH_ROLE_ARN"
	})
	for _, e := range init.Env {
		env[e.Name] = inMount(e.Value)
	}
	// The projected service-account token: the sandbox's issuer stands in for the cluster's.
	if err := os.WriteFile(env["AWS_WEB_IDENTITY_TOKEN_FILE"], []byte(sandboxToken(t, sb)), 0o600); err != nil {
		t.Fatal(err)
	}
	env["ECRPUSH_ROLE_ARN"] = "arn:aws:iam::" + sandbox.CIAccount + ":role/" + cfg.Accounts[0].Roles[0].Name
	var args []string
	for _, a := range init.Args {
		args = append(args, inMount(a))
	}
	r := run(t, t.TempDir(), env, args...)
	if r.code != 0 {
		t.Fatalf("the init container's ecrpush exited %d: %s\n%s", r.code, r.errLine, r.stderr)
	}
	out := inMount("/out/secret.yaml")
	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("--out file: %v %v", fi, err)
	}
	var s struct {
		Kind, Type string
		Metadata   struct{ Name, Namespace string }
		Data       map[string]string
	}
	if err := yaml.Unmarshal([]byte(readFile(t, out)), &s); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(s.Data[".dockerconfigjson"])
	var dc struct {
		Auths map[string]struct{ Username, Password, Auth string }
	}
	if err := json.Unmarshal(raw, &dc); err != nil {
		t.Fatal(err)
	}
	if s.Kind != "Secret" || s.Type != "kubernetes.io/dockerconfigjson" || s.Metadata.Name != secret || s.Metadata.Namespace != namespace {
		t.Errorf("the Secret is %s %s %s/%s", s.Kind, s.Type, s.Metadata.Namespace, s.Metadata.Name)
	}
	for _, host := range strings.Split(flagValue(init.Args, "registry"), ",") {
		if a := dc.Auths[host]; a.Username != "AWS" || a.Password == "" {
			t.Errorf("the Secret has no credentials for %s", host)
		}
	}
	if strings.Contains(r.stderr, "expires before a 6-hourly refresh") {
		t.Errorf("the recipe's tokens expire before the next run:\n%s", r.stderr)
	}
}

// sandboxToken asks the sandbox's token service for an OIDC token with audience sts.amazonaws.com.
func sandboxToken(t *testing.T, sb *sandbox.Sandbox) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, sb.Endpoints.GitHubTokenURL+"&audience=sts.amazonaws.com", nil)
	req.Header.Set("Authorization", "Bearer "+sb.Endpoints.GitHubRequestToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Value string `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.Value == "" {
		t.Fatalf("token service: %v %s", err, resp.Status)
	}
	return v.Value
}
