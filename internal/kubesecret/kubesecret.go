package kubesecret

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Type is the Secret type kubelet reads image pull credentials from.
const Type = "kubernetes.io/dockerconfigjson"

// Key is the data key of a dockerconfigjson Secret.
const Key = ".dockerconfigjson"

// ExpiresAnnotation records when the earliest token in the Secret expires.
const ExpiresAnnotation = "ecrpush/expires-at"

var (
	// RFC 1123 label (namespaces) and subdomain (Secret names), as the API server checks them.
	labelRe     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	subdomainRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// Auth is one registry's credentials.
type Auth struct {
	Username string
	Password string
}

// DockerConfig is the content of .dockerconfigjson: {"auths": {HOST: {username, password, auth}}}.
type DockerConfig struct {
	Auths map[string]DockerAuth `json:"auths"`
}

// DockerAuth is one entry of a docker config's auths; auth is base64(username:password), which is
// what kubelet and older clients read.
type DockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// Config builds the docker config for auths (keyed by registry host).
func Config(auths map[string]Auth) DockerConfig {
	c := DockerConfig{Auths: map[string]DockerAuth{}}
	for host, a := range auths {
		c.Auths[host] = DockerAuth{Username: a.Username, Password: a.Password,
			Auth: base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))}
	}
	return c
}

// Validate checks a namespace and Secret name as the API server would.
func Validate(namespace, name string) error {
	if namespace == "" || len(namespace) > 63 || !labelRe.MatchString(namespace) {
		return fixable.New("--namespace %q is not a Kubernetes namespace name: lower-case letters, digits and -, at most 63 characters", namespace)
	}
	if name == "" || len(name) > 253 || !subdomainRe.MatchString(name) {
		return fixable.New("--name %q is not a Kubernetes Secret name: lower-case letters, digits, - and ., at most 253 characters", name)
	}
	return nil
}

// Payload is the Secret's .dockerconfigjson value: the base64 of the docker config for auths. It is
// a secret as a whole (a GitHub mask must cover it, not only the passwords inside).
func Payload(auths map[string]Auth) (string, error) {
	cfg, err := json.Marshal(Config(auths))
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(cfg), nil
}

// Manifest renders the Secret as YAML (JSON when asJSON). expires is the earliest token expiry.
func Manifest(namespace, name string, auths map[string]Auth, expires time.Time, asJSON bool) ([]byte, error) {
	if err := Validate(namespace, name); err != nil {
		return nil, err
	}
	if len(auths) == 0 {
		return nil, fixable.New("no registries: pass --registry HOST at least once")
	}
	data, err := Payload(auths)
	if err != nil {
		return nil, err
	}
	exp := expires.UTC().Format(time.RFC3339)
	hosts := make([]string, 0, len(auths))
	for h := range auths {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	if asJSON {
		doc := map[string]any{
			"apiVersion": "v1",
			"kind":       "Secret",
			"metadata": map[string]any{
				"name": name, "namespace": namespace,
				"labels":      map[string]string{"app.kubernetes.io/managed-by": "ecrpush"},
				"annotations": map[string]string{ExpiresAnnotation: exp, "ecrpush/registries": strings.Join(hosts, ",")},
			},
			"type": Type,
			"data": map[string]string{Key: data},
		}
		b, err := json.MarshalIndent(doc, "", "  ")
		return append(b, '\n'), err
	}
	// Every value below is either validated above or quoted by %q (JSON quoting is valid YAML).
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n", name, namespace)
	fmt.Fprintf(&b, "  labels:\n    app.kubernetes.io/managed-by: ecrpush\n")
	fmt.Fprintf(&b, "  annotations:\n    %s: %q\n    ecrpush/registries: %q\n", ExpiresAnnotation, exp, strings.Join(hosts, ","))
	fmt.Fprintf(&b, "type: %s\ndata:\n  %s: %s\n", Type, Key, data)
	return []byte(b.String()), nil
}
