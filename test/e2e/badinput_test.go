package e2e_test

import (
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// fixWords are the words a one-line error uses to say what to change — an instruction, or the
// rule or the choices the value must meet; every bad-input message must hold one of them.
var fixWords = []string{"use ", "must", "pass ", "set ", "e.g.", "like ", "drop ", "add ", "give ", "point ",
	"check ", "run ", "did you mean", "at most", "one of", "keep one", "list only", "grant ", "is required",
	"choose", "needs ", "push with", "create ", "log in", "out of range", "accepts", "name a ", "letters, digits",
	"text or json", "tags go in", "it holds", "among", "true or false", "a whole number", "a duration", "takes no arguments"}

// TestBadInput feeds the command line one mistake at a time — flags, environment variables and
// GitHub Action inputs as a workflow would pass them — and requires each to end with exit 2 and a
// single line that names the input and says what to change, with nothing written to any registry
// or replication configuration.
func TestBadInput(t *testing.T) {
	h := newHarness(t, nil)
	src, _ := randomSource(t, 1024, 1)
	layoutDir := strings.TrimSuffix(strings.TrimPrefix(src, "oci-layout:"), ":v1")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notJWT := write("token-not-jwt", "this is not a token\n")
	emptyTok := write("token-empty", "")
	notSocket := write("docker.sock", "a regular file, not a socket")
	// A socket nobody answers on, unreadable for anyone but root.
	deadSocket := filepath.Join(dir, "dead.sock")
	ln, err := net.Listen("unix", deadSocket)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if err := os.Chmod(deadSocket, 0); err != nil {
		t.Fatal(err)
	}
	// An empty registry on 127.0.0.1 for a source image that does not exist.
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	emptyReg := strings.TrimPrefix(reg.URL, "http://")

	long := strings.Repeat("a", 129)
	type tc struct {
		name string
		args []string // after "push" and the defaults below (later flags win)
		env  env
		cmd  []string // a whole command line instead of push
		want []string // substrings naming the input
	}
	push := func(name string, want []string, args ...string) tc { return tc{name: name, args: args, want: want} }
	input := func(name string, want []string, e env) tc { return tc{name: name, env: e, want: want} }
	cases := []tc{
		// Role ARNs.
		push("arn short account", []string{"--role-arn", "arn:aws:iam::12345:role/x"}, "--role-arn", "arn:aws:iam::12345:role/x"),
		push("arn unknown partition", []string{"--role-arn", "arn:azure:iam"}, "--role-arn", "arn:azure:iam::111122223333:role/ecrpush-ci"),
		push("arn partition not the region's", []string{"--role-arn", "aws-cn", "us-east-1"}, "--role-arn", "arn:aws-cn:iam::111122223333:role/ecrpush-ci"),
		push("arn of a user", []string{"--role-arn", "user/bob"}, "--role-arn", "arn:aws:iam::111122223333:user/bob"),
		push("arn of a bucket", []string{"--role-arn", "arn:aws:s3"}, "--role-arn", "arn:aws:s3:::bucket"),
		push("arn with a space", []string{"--role-arn"}, "--role-arn", "arn:aws:iam::111122223333:role/ecr push"),
		{name: "arn missing", env: env{"ECRPUSH_ROLE_ARN": ""}, want: []string{"--role-arn"}},
		// Regions.
		push("region unknown", []string{"--region", "mars"}, "--region", "mars"),
		push("region upper case", []string{"--region", "US-EAST-1"}, "--region", "US-EAST-1"),
		push("region is a zone", []string{"--region", "us-east-1a"}, "--region", "us-east-1a"),
		{name: "region missing", env: env{"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}, want: []string{"region"}},
		// Repositories.
		push("repository upper case", []string{"--repository", "Team/App"}, "--repository", "Team/App"),
		push("repository too short", []string{"--repository", `"a"`}, "--repository", "a"),
		push("repository too long", []string{"--repository"}, "--repository", strings.Repeat("r", 257)),
		push("repository double slash", []string{"--repository", "team//app"}, "--repository", "team//app"),
		push("repository leading dash", []string{"--repository", "-app"}, "--repository", "-app"),
		push("repository trailing slash", []string{"--repository", "app/"}, "--repository", "app/"),
		push("repository with a tag", []string{"--repository", "team/app:v1"}, "--repository", "team/app:v1"),
		// Tags.
		push("tag over 128 characters", []string{"--tag", "129 characters"}, "--tag", long),
		push("tag starts with a dot", []string{"--tag", ".hidden"}, "--tag", ".hidden"),
		push("tag starts with a dash", []string{"--tag", "-x"}, "--tag", "-x"),
		push("tag with a space", []string{"--tag", "v1 beta"}, "--tag", "v1 beta"),
		push("tag with a slash", []string{"--tag", "v1/x"}, "--tag", "v1/x"),
		push("tag is a digest", []string{"--tag"}, "--tag", "sha256:abc"),
		{name: "tag missing", cmd: []string{"push", "--source", src, "--repository", "team/app"}, want: []string{"--tag"}},
		// Replication destinations.
		push("replicate-to account name", []string{"--replicate-to", "prod"}, "--replicate-to", "prod:us-east-1"),
		push("replicate-to bad region", []string{"--replicate-to", "mars"}, "--replicate-to", "444455556666:mars"),
		push("replicate-to short account", []string{"--replicate-to", "4444555566"}, "--replicate-to", "4444555566:us-east-1"),
		push("replicate-to the ci registry", []string{"--replicate-to", "111122223333:us-east-1"}, "--replicate-to", "111122223333:us-east-1"),
		push("replicate-to role in another account", []string{"--replicate-to", "777788889999"},
			"--replicate-to", "444455556666:us-east-1=arn:aws:iam::777788889999:role/ecrpush-deploy", "--replication", "copy"),
		push("replicate-to role not an ARN", []string{"--replicate-to", "notanarn"}, "--replicate-to", "444455556666:us-east-1=notanarn", "--replication", "copy"),
		push("replicate-to twice with two roles", []string{"--replicate-to", "twice"}, "--replication", "copy",
			"--replicate-to", "444455556666:us-east-1=arn:aws:iam::444455556666:role/a,444455556666:us-east-1=arn:aws:iam::444455556666:role/b"),
		push("replicate-to with another registry", []string{"--replicate-to", "--repository"},
			"--repository", "", "--destination", emptyReg+"/app", "--replicate-to", "444455556666:us-east-1"),
		push("destination role name", []string{"--destination-role-name", "bad name!"}, "--replicate-to", "444455556666:us-east-1",
			"--replication", "copy", "--destination-role-name", "bad name!"),
		push("replication mode", []string{"--replication", "fast"}, "--replication", "fast"),
		push("replication timeout zero", []string{"--replication-timeout"}, "--replication-timeout", "0s"),
		push("replication prefix", []string{"--replication-prefix"}, "--replication-prefix", "Bad Prefix"),
		// Sources.
		push("source unknown transport", []string{"ftp://"}, "--source", "ftp://example.com/app"),
		push("source transport typo", []string{"docker-deamon", "docker-daemon"}, "--source", "docker-deamon:app"),
		push("source unsupported transport", []string{"containers-storage"}, "--source", "containers-storage:app"),
		push("source empty", []string{"--source"}, "--source", ""),
		push("source bad reference", []string{"UPPER/Repo"}, "--source", "UPPER/Repo:v1"),
		push("source missing layout", []string{"/nonexistent/layout"}, "--source", "oci-layout:/nonexistent/layout"),
		push("source missing archive", []string{"/nonexistent/app.tar"}, "--source", "docker-archive:/nonexistent/app.tar"),
		push("source missing oci archive", []string{"/nonexistent/app.oci.tar"}, "--source", "oci-archive:/nonexistent/app.oci.tar"),
		push("source tag not in the layout", []string{"nope"}, "--source", "oci-layout:"+layoutDir+":nope"),
		push("source image missing from its registry", []string{emptyReg + "/nope"}, "--source", emptyReg+"/nope:v1"),
		{name: "source docker socket not a socket", args: []string{"--source", "docker-daemon:app:v1"}, env: env{"DOCKER_HOST": "unix://" + notSocket},
			want: []string{"docker"}},
		{name: "source docker socket missing", args: []string{"--source", "docker-daemon:app:v1"}, env: env{"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
			want: []string{"docker"}},
		{name: "source docker socket unreadable", args: []string{"--source", "docker-daemon:app:v1"}, env: env{"DOCKER_HOST": "unix://" + deadSocket},
			want: []string{"docker"}},
		push("platform without architecture", []string{"--platform", "linux"}, "--platform", "linux"),
		// Identity.
		push("identity unknown", []string{"--identity", "azure"}, "--identity", "azure"),
		push("identity file without a file", []string{"--identity file", "--web-identity-token-file"}, "--identity", "file"),
		push("token file missing", []string{"/nonexistent/token"}, "--identity", "file", "--web-identity-token-file", "/nonexistent/token"),
		push("token file not a JWT", []string{notJWT}, "--identity", "file", "--web-identity-token-file", notJWT),
		push("token file empty", []string{emptyTok}, "--identity", "file", "--web-identity-token-file", emptyTok),
		push("audience empty", []string{"--audience"}, "--audience", ""),
		push("role duration too short", []string{"--role-duration", "15m"}, "--role-duration", "1m"),
		push("role duration too long", []string{"--role-duration", "12h"}, "--role-duration", "13h"),
		push("role session name", []string{"--role-session-name"}, "--role-session-name", "a b"),
		// Other flags.
		push("jobs zero", []string{"--jobs", "0"}, "--jobs", "0"),
		push("jobs too many", []string{"--jobs", "65"}, "--jobs", "65"),
		push("output format", []string{"--output", "yaml"}, "--output", "yaml"),
		push("kms key not an ARN", []string{"--kms-key", "alias/x"}, "--kms-key", "alias/x"),
		push("repository and destination", []string{"--repository", "--destination"}, "--destination", emptyReg+"/app"),
		push("destination with a digest", []string{"--destination"}, "--repository", "", "--destination", emptyReg+"/app@sha256:"+strings.Repeat("0", 64)),
		push("unknown flag", []string{"-tga"}, "--tga", "v1"),
		push("flag without a value", []string{"-tag"}, "--tag"),
		push("bool flag value", []string{"create-repository"}, "--create-repository=maybe"),
		{name: "positional argument", cmd: []string{"push", "--source", src, "--repository", "team/app", "--tag", "v1", "extra"}, want: []string{"extra"}},
		{name: "duration from the environment", env: env{"ECRPUSH_ROLE_DURATION": "forever"}, want: []string{"ECRPUSH_ROLE_DURATION", "forever", "a duration like"}},
		{name: "missing repository with --create-repository=false", args: []string{"--repository", "team/missing", "--create-repository=false"},
			want: []string{"team/missing"}},
		// GitHub Action inputs, as a workflow passes them: stray whitespace and newlines.
		input("input role with two lines", []string{"role"}, env{"INPUT_ROLE-TO-ASSUME": ciRole + "\n" + ciRole, "ECRPUSH_ROLE_ARN": ""}),
		input("input role with a space", []string{"role"}, env{"INPUT_ROLE-TO-ASSUME": "arn:aws:iam::111122223333:role/ecr push", "ECRPUSH_ROLE_ARN": ""}),
		input("input region with a newline inside", []string{"region"}, env{"INPUT_AWS-REGION": "us-east-1\neu-west-1", "AWS_REGION": ""}),
		input("input repository with a newline inside", []string{"input repository"}, env{"INPUT_REPOSITORY": "team/app\nother"}),
		input("input tags with a tab", []string{"v1\\tv2"}, env{"INPUT_TAGS": "v1\tv2\n"}),
		input("input replicate-to with spaces", []string{"input replicate-to"}, env{"INPUT_REPLICATE-TO": "444455556666 : us-east-1"}),
		input("input jobs not a number", []string{"input jobs", "a whole number"}, env{"INPUT_JOBS": "eight"}),
		input("input bool", []string{"input configure-replication", "true or false"}, env{"INPUT_CONFIGURE-REPLICATION": "yes please"}),
		// Other commands.
		{name: "federate format", cmd: []string{"federate", "--format", "yaml"}, want: []string{"--format", "yaml"}},
		{name: "federate argument", cmd: []string{"federate", "now"}, want: []string{"now"}},
		{name: "trust-policy repository", cmd: []string{"trust-policy", "--account", "111122223333", "--github-repo", "not-a-repo"}, want: []string{"not-a-repo"}},
		{name: "unknown command", cmd: []string{"pusj"}, want: []string{"pusj"}},
	}
	if len(cases) < 50 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.cmd
			e := h.github()
			for k, v := range c.env {
				e[k] = v
				if k == "DOCKER_HOST" {
					// Docker's client reads the process environment, not the command's.
					t.Setenv(k, v)
					c.want = append(c.want, strings.TrimPrefix(v, "unix://"))
				}
			}
			if args == nil {
				// Flags come from the inputs alone for input cases, as in a workflow.
				if !strings.HasPrefix(c.name, "input ") {
					args = append([]string{"push", "--source", src, "--repository", "team/app", "--tag", "v1"}, c.args...)
				} else {
					args = []string{"push"}
					defaults := env{"INPUT_SOURCE": src, "INPUT_REPOSITORY": "team/app", "INPUT_TAGS": "v1"}
					for k, v := range defaults {
						if _, ok := e[k]; !ok {
							e[k] = v
						}
					}
				}
			}
			h.sb.Log.Reset()
			r := h.run(c.name, e, args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2: %s\n%s", r.code, r.errLine, r.stderr)
			}
			oneLine(t, r.errLine)
			for _, w := range c.want {
				if !strings.Contains(r.errLine, w) {
					t.Errorf("the error does not name %q: %s", w, r.errLine)
				}
			}
			fix := false
			for _, w := range fixWords {
				fix = fix || strings.Contains(strings.ToLower(r.errLine), w)
			}
			if !fix {
				t.Errorf("the error does not say what to change: %s", r.errLine)
			}
			if w := h.sb.Log.Writes(); len(w) != 0 {
				t.Errorf("bad input wrote: %+v", w)
			}
			t.Logf("%s", r.errLine)
		})
	}
}
