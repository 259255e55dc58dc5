package e2e_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ecrpush/ecrpush/internal/cli"
	"github.com/ecrpush/ecrpush/internal/testenv"
	"github.com/ecrpush/ecrpush/sandbox"
)

// ordered is a step's log as the runner sees it: stdout and stderr both read for workflow commands, in
// the order they were written.
type ordered struct {
	mu  sync.Mutex
	log bytes.Buffer
}

type stream struct {
	o   *ordered
	own bytes.Buffer
}

func (s *stream) Write(p []byte) (int, error) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	s.own.Write(p)
	return s.o.log.Write(p)
}

// TestEveryCommandMasksOnGitHub runs every command that handles a secret under a simulated GitHub runner
// against the sandbox and fails if a secret the sandbox issued (ID tokens, secret keys, session tokens,
// registry passwords) appears in stdout, stderr, GITHUB_OUTPUT, GITHUB_ENV or the step summary before a
// ::add-mask:: line for it, or at all where the command has no reason to print it.
func TestEveryCommandMasksOnGitHub(t *testing.T) {
	h := newHarness(t, fastConfig())
	src, _ := randomSource(t, 2048, 1)
	registry := sandbox.CIAccount + ".dkr.ecr.us-east-1.amazonaws.com"
	host := strings.TrimPrefix(h.sb.Endpoints.Registries[sandbox.RegistryID{Account: sandbox.CIAccount, Region: "us-east-1"}], "http://")
	// sync reads a third-party registry: an in-process one holding a random image.
	hub := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(hub.Close)
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	upstream := strings.TrimPrefix(hub.URL, "http://") + "/library/tool:1"
	if err := crane.Push(img, upstream); err != nil {
		t.Fatal(err)
	}
	mirrorFile := filepath.Join(t.TempDir(), "images.yaml")
	if err := os.WriteFile(mirrorFile, []byte("repository: mirror/{path}\nimages:\n  - source: "+upstream+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// printsSecrets: stdout carries credentials by design (they must then be masked before they appear).
	for _, c := range []struct {
		name          string
		args          []string
		stdin         string
		printsSecrets bool
	}{
		{"push", []string{"push", "--role-arn", ciRole, "--source", src, "--repository", "mask/app", "--tag", "v1", "--replicate-to", sandbox.ProdAccount + ":us-east-1", "--configure-replication"}, "", false},
		{"push json", []string{"push", "--role-arn", ciRole, "--source", src, "--repository", "mask/app", "--tag", "v1", "--output", "json"}, "", false},
		{"federate export", []string{"federate", "--role-arn", ciRole, "--format", "export"}, "", true},
		{"federate json", []string{"federate", "--role-arn", ciRole, "--format", "json"}, "", true},
		{"federate credential-process", []string{"federate", "--role-arn", ciRole, "--format", "credential-process"}, "", true},
		{"replication plan", []string{"replication", "plan", "--role-arn", ciRole, "--repository", "mask/app", "--replicate-to", sandbox.StagingAccount + ":eu-west-1"}, "", false},
		{"replication status", []string{"replication", "status", "--role-arn", ciRole, "mask/app:v1"}, "", false},
		{"credential-helper get", []string{"credential-helper", "--role-arn", ciRole, "--registry-hosts", host + "=" + sandbox.CIAccount + ":us-east-1", "get"}, host, true},
		{"kube-secret", []string{"kube-secret", "--role-arn", ciRole, "--namespace", "apps", "--name", "ecr", "--registry", registry}, "", true},
		{"sync", []string{"sync", "--role-arn", ciRole, "--file", mirrorFile, "--lock", filepath.Join(t.TempDir(), "lock.json")}, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"GITHUB_OUTPUT": filepath.Join(dir, "output"), "GITHUB_ENV": filepath.Join(dir, "env"), "GITHUB_STEP_SUMMARY": filepath.Join(dir, "summary")}
			e := env{"GITHUB_ACTIONS": "true", "HOME": dir}
			for k, v := range files {
				e[k] = v
			}
			getenv := func(k string) string {
				if v, ok := e[k]; ok {
					return v
				}
				return os.Getenv(k)
			}
			var o ordered
			out, errs := &stream{o: &o}, &stream{o: &o}
			err := cli.Run(context.Background(), "ecrpush", c.args, cli.IO{In: strings.NewReader(c.stdin), Out: out, Err: errs, Getenv: getenv})
			if err != nil {
				t.Fatalf("%s: %s\n%s", c.name, cli.Message(err), errs.own.String())
			}
			secrets := h.secrets()
			log := o.log.String()
			masked := map[string]bool{}
			used := 0
			for _, line := range strings.SplitAfter(log, "\n") {
				if m, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "::add-mask::"); ok {
					masked[m] = true
					continue
				}
				for _, s := range secrets {
					if len(s) >= 8 && strings.Contains(line, s) {
						used++
						if !masked[s] {
							t.Errorf("a secret (%d chars, %q…) printed before any ::add-mask:: for it: %.60q", len(s), s[:4], line)
						}
					}
				}
			}
			if c.name == "kube-secret" {
				// The Secret's payload (base64 of a docker config) is a secret as a whole.
				_, payload, _ := strings.Cut(out.own.String(), ".dockerconfigjson: ")
				payload, _, _ = strings.Cut(payload, "\n")
				if payload == "" || !masked[payload] {
					t.Errorf("the Secret's payload is not masked (%d chars)", len(payload))
				}
				used++
			}
			if c.printsSecrets && used == 0 {
				t.Errorf("%s printed no credential: the test no longer checks what it should", c.name)
			}
			if !c.printsSecrets {
				testenv.NoSecrets(t, secrets, map[string]string{"stdout": out.own.String(), "stderr": errs.own.String()})
			}
			if strings.Contains(out.own.String(), "::add-mask::") {
				t.Error("a workflow command on stdout: it belongs on stderr, so stdout stays the command's own")
			}
			for name, p := range files {
				b, _ := os.ReadFile(p)
				testenv.NoSecrets(t, secrets, map[string]string{name: string(b)})
			}
			h.keep(c.name+": stderr", testenv.Unmasked(errs.own.String()))
		})
	}
}
