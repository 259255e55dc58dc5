package ship_test

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// No docker engine runs here, so the tests read the Dockerfile the two ways engines do and run its build
// command with the environment each reading gives it:
//
//   - the legacy builder (DOCKER_BUILDKIT=0; Docker 20.10 without buildx, as in gcr.io/cloud-builders/docker):
//     no automatic platform args; FROM --platform is expanded with the global ARGs only and parsed by
//     containerd's platforms.Parse, where a lone OS ("linux") takes the engine's own architecture
//     (moby daemon/builder/dockerfile/dispatchers.go initializeStage; containerd/platforms Parse);
//   - BuildKit (moby/buildkit frontend/dockerfile/dockerfile2llb): BUILDPLATFORM, TARGETPLATFORM and their
//     OS/ARCH/VARIANT parts are global args; an ARG with a default replaces them (buildMetaArgs for global
//     ARGs, dispatchArg for stage ARGs: a --build-arg wins, then the ARG's default, then the global value).

// dockerInstruction is one Dockerfile instruction, continuation lines joined.
type dockerInstruction struct {
	cmd  string // upper case
	rest string
	line int
}

func parseDockerfile(text string) []dockerInstruction {
	var out []dockerInstruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		} else if strings.HasPrefix(trimmed, "#") {
			continue // comments inside a continued instruction are dropped
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, rest, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{cmd: strings.ToUpper(cmd), rest: strings.TrimSpace(rest), line: start})
		cur.Reset()
	}
	return out
}

var shellVarRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expandWord expands $VAR, ${VAR}, ${VAR:-word}, ${VAR-word}, ${VAR:+word} and ${VAR+word} as the
// Dockerfile shell lexer does (nested words are expanded too).
func expandWord(s string, vars map[string]string) string {
	return shellVarRe.ReplaceAllStringFunc(s, func(m string) string {
		sm := shellVarRe.FindStringSubmatch(m)
		name, op, word := sm[1]+sm[4], sm[2], sm[3]
		v, set := vars[name]
		switch op {
		case ":-":
			if v == "" {
				return expandWord(word, vars)
			}
		case "-":
			if !set {
				return expandWord(word, vars)
			}
		case ":+":
			if v != "" {
				return expandWord(word, vars)
			}
			return ""
		case "+":
			if set {
				return expandWord(word, vars)
			}
			return ""
		}
		return v
	})
}

// containerdPlatform parses a platform specifier as containerd's platforms.Parse does for the cases a
// Dockerfile meets: "" is an error (the legacy builder's `failed to parse platform : "" is an invalid
// component`), a lone OS takes the engine's architecture, OS/ARCH[/VARIANT] as written.
func containerdPlatform(spec, engineArch string) (string, error) {
	parts := strings.Split(spec, "/")
	switch {
	case spec == "":
		return "", fmt.Errorf(`failed to parse platform : "" is an invalid component`)
	case len(parts) == 1 && (spec == "linux" || spec == "windows" || spec == "darwin"):
		return spec + "/" + engineArch, nil
	case len(parts) >= 2 && len(parts) <= 3 && parts[0] != "" && parts[1] != "":
		return spec, nil
	}
	return "", fmt.Errorf("failed to parse platform %s", spec)
}

// dockerStage is what a reading of the Dockerfile gives one stage.
type dockerStage struct {
	name     string
	image    string
	platform string            // the platform the stage's image is pulled for
	env      map[string]string // ARG values visible to RUN (unset ARGs absent)
	runs     []string
}

// engine is one way of reading a Dockerfile.
type engine struct {
	name      string
	buildKit  bool
	hostArch  string // the engine's (and build machine's) architecture
	target    string // TARGETPLATFORM (BuildKit); the legacy builder builds for the engine's platform
	buildArgs map[string]string
}

func (e engine) read(t *testing.T, text string) ([]dockerStage, error) {
	t.Helper()
	global := map[string]string{}
	if e.buildKit {
		split := func(prefix, p string) {
			parts := strings.Split(p, "/")
			global[prefix+"PLATFORM"], global[prefix+"OS"], global[prefix+"ARCH"] = p, parts[0], parts[1]
			global[prefix+"VARIANT"] = ""
			if len(parts) > 2 {
				global[prefix+"VARIANT"] = parts[2]
			}
		}
		split("BUILD", "linux/"+e.hostArch)
		split("TARGET", e.target)
	}
	var stages []dockerStage
	var cur *dockerStage
	for _, in := range parseDockerfile(text) {
		switch in.cmd {
		case "ARG":
			name, def, hasDef := strings.Cut(in.rest, "=")
			scope := global
			if cur != nil {
				scope = cur.env
			}
			v, given := e.buildArgs[name]
			switch {
			case given:
			case hasDef:
				v = expandWord(strings.Trim(def, `"`), scope)
			default:
				gv, ok := global[name]
				if !ok || cur == nil {
					continue // declared without a value: stays unset
				}
				v = gv
			}
			scope[name] = v
		case "FROM":
			fields := strings.Fields(in.rest)
			var platformFlag string
			hasPlatform := false
			for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
				if p, ok := strings.CutPrefix(fields[0], "--platform="); ok {
					platformFlag, hasPlatform = p, true
				}
				fields = fields[1:]
			}
			st := dockerStage{image: fields[0], env: map[string]string{}}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.name = fields[2]
			}
			switch {
			case hasPlatform:
				p, err := containerdPlatform(expandWord(platformFlag, global), e.hostArch)
				if err != nil {
					return nil, fmt.Errorf("line %d: FROM --platform=%s: %w", in.line, platformFlag, err)
				}
				st.platform = p
			case e.buildKit:
				st.platform = e.target
			default:
				st.platform = "linux/" + e.hostArch
			}
			stages = append(stages, st)
			cur = &stages[len(stages)-1]
		case "RUN":
			if cur == nil {
				return nil, fmt.Errorf("line %d: RUN before FROM", in.line)
			}
			cur.runs = append(cur.runs, in.rest)
		}
	}
	return stages, nil
}

// goBuild finds the stage and the RUN that builds /out/ecrpush, and the architecture Go will build for:
// GOARCH from that RUN's environment, else the stage image's own.
func goBuild(t *testing.T, stages []dockerStage) (dockerStage, string, string) {
	t.Helper()
	for _, st := range stages {
		for _, r := range st.runs {
			if !strings.Contains(r, "go build") || !strings.Contains(r, "-o /out/ecrpush") {
				continue
			}
			arch := strings.Split(st.platform, "/")[1]
			m := regexp.MustCompile(`GOARCH=(\S+)`).FindStringSubmatch(r)
			if m == nil {
				t.Fatalf("the build RUN sets no GOARCH: %s", r)
			}
			if v := expandWord(m[1], st.env); v != "" {
				arch = v
			}
			return st, r, arch
		}
	}
	t.Fatal("no stage RUNs go build -o /out/ecrpush")
	return dockerStage{}, "", ""
}

// engines are the readings the image must survive: the legacy builder, and BuildKit for one platform and
// for each platform of the release's multi-platform build.
func engines() []engine {
	host := runtime.GOARCH
	other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[host]
	return []engine{
		{name: "legacy builder (empty platform args)", hostArch: host, buildArgs: map[string]string{"VERSION": "v0.0.0-legacy"}},
		{name: "BuildKit linux/" + host, buildKit: true, hostArch: host, target: "linux/" + host, buildArgs: map[string]string{"VERSION": "v0.0.0-bk"}},
		{name: "BuildKit linux/" + other + " (cross)", buildKit: true, hostArch: host, target: "linux/" + other, buildArgs: map[string]string{"VERSION": "v0.0.0-bk"}},
	}
}

// dockerfileProblems reads text as e does and says what is wrong with the image it would build.
func dockerfileProblems(t *testing.T, e engine, text string) (stages []dockerStage, problems []string) {
	t.Helper()
	stages, err := e.read(t, text)
	if err != nil {
		return nil, []string{e.name + " refuses the Dockerfile: " + err.Error()}
	}
	final := stages[len(stages)-1]
	want := e.target
	if !e.buildKit {
		want = "linux/" + e.hostArch
	}
	if final.platform != want {
		problems = append(problems, "the final stage is for "+final.platform+", want "+want)
	}
	st, _, arch := goBuild(t, stages)
	if st.platform != "linux/"+e.hostArch {
		problems = append(problems, "the build stage runs on "+st.platform+", not natively on the build machine (linux/"+e.hostArch+"): a cross build would need emulation")
	}
	if fa := strings.Split(final.platform, "/")[1]; arch != fa {
		problems = append(problems, "go builds for "+arch+" but the image is "+final.platform)
	}
	return stages, problems
}

// TestDockerfileLogic reads the Dockerfile as the legacy builder and as BuildKit (native and cross), runs its
// go build with the environment each gives the RUN, and checks the binary's architecture is the final
// image's. The same reading of deliberately broken Dockerfiles must fail, so the test can tell.
func TestDockerfileLogic(t *testing.T) {
	text := readFile(t, filepath.Join(root, "Dockerfile"))
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("the release platforms are amd64 and arm64; this machine is %s", runtime.GOARCH)
	}
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			stages, problems := dockerfileProblems(t, e, text)
			if len(problems) > 0 {
				t.Fatal(strings.Join(problems, "; "))
			}
			st, cmd, _ := goBuild(t, stages)
			finalArch := strings.Split(stages[len(stages)-1].platform, "/")[1]

			// Run the RUN itself: its shell expands the ARGs the stage has, as the engine's RUN does.
			out := filepath.Join(t.TempDir(), "ecrpush")
			script := strings.ReplaceAll(cmd, "/out/ecrpush", "'"+out+"'")
			sh := exec.Command("/bin/sh", "-c", script)
			sh.Dir = root // WORKDIR /src holds the build context: the repository root
			sh.Env = goImageEnv(t)
			for k, v := range st.env {
				sh.Env = append(sh.Env, k+"="+v)
			}
			if b, err := sh.CombinedOutput(); err != nil {
				t.Fatalf("the Dockerfile's build command failed: %v\n%s", err, b)
			}
			checkELF(t, out, finalArch)
			if finalArch == runtime.GOARCH {
				if r := runBinary(t, out, "version"); !strings.Contains(r, e.buildArgs["VERSION"]) {
					t.Errorf("the built ecrpush version says %q, want the VERSION build arg %s", r, e.buildArgs["VERSION"])
				}
			}
		})
	}

	// The same readings catch the mistakes this Dockerfile must not make.
	for _, bad := range []struct{ name, from, to, engine, want string }{
		{"a defaulted TARGETARCH", "ARG TARGETARCH\n", "ARG TARGETARCH=amd64\n", "cross", "go builds for"},
		{"FROM --platform=$BUILDPLATFORM", "--platform=${BUILDPLATFORM:-linux}", "--platform=$BUILDPLATFORM", "legacy", `"" is an invalid component`},
		{"no --platform on the build stage", "--platform=${BUILDPLATFORM:-linux} ", "", "cross", "not natively"},
	} {
		broken := strings.Replace(text, bad.from, bad.to, 1)
		if broken == text {
			t.Fatalf("mutation %q: the Dockerfile no longer has %q; update this test", bad.name, bad.from)
		}
		for _, e := range engines() {
			if !strings.Contains(e.name, bad.engine) {
				continue
			}
			_, problems := dockerfileProblems(t, e, broken)
			if !strings.Contains(strings.Join(problems, "; "), bad.want) {
				t.Errorf("mutation %q under %s went unnoticed: %q", bad.name, e.name, problems)
			}
		}
	}
}

// goImageEnv is the environment the official golang image gives a RUN: its toolchain and no fallback to
// another one (GOTOOLCHAIN=local), no VCS stamping (.dockerignore leaves .git out of the context).
func goImageEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, k := range []string{"PATH", "HOME", "GOPATH", "GOCACHE", "GOMODCACHE", "GOPROXY", "GONOSUMDB", "GOPRIVATE", "GOFLAGS", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, "GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false")
}

// checkELF checks the binary is a static Linux executable for arch.
func checkELF(t *testing.T, path, arch string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		t.Errorf("the binary is for %s, want %s (%s)", f.Machine, want, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked (PT_INTERP): distroless/static has no libc")
		}
	}
}

func runBinary(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	return string(out)
}

var fromImageRe = regexp.MustCompile(`^([a-z0-9.-]+(?::[0-9]+)?/)?([a-z0-9._/-]+):([A-Za-z0-9._-]+)@sha256:[0-9a-f]{64}$`)

// TestDockerfilePins checks every base image is pinned by digest with the tag it was taken from, and the Go
// image carries at least go.mod's Go version (the official image will not fetch another toolchain).
func TestDockerfilePins(t *testing.T) {
	text := readFile(t, filepath.Join(root, "Dockerfile"))
	froms := 0
	for _, in := range parseDockerfile(text) {
		if in.cmd != "FROM" {
			continue
		}
		froms++
		fields := strings.Fields(in.rest)
		for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
			fields = fields[1:]
		}
		m := fromImageRe.FindStringSubmatch(fields[0])
		if m == nil {
			t.Errorf("line %d: FROM %s is not IMAGE:TAG@sha256:DIGEST (pinned by digest, naming the tag)", in.line, fields[0])
			continue
		}
		if m[2] == "golang" {
			goMod := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readFile(t, filepath.Join(root, "go.mod")))
			if goMod == nil {
				t.Fatal("go.mod has no go directive")
			}
			if versionLess(m[3], goMod[1]) {
				t.Errorf("the build image is golang:%s but go.mod says go %s: with GOTOOLCHAIN=local the build fails", m[3], goMod[1])
			}
		}
	}
	if froms < 2 {
		t.Errorf("%d FROM lines, want the build and the final stage", froms)
	}
	for _, label := range []string{"org.opencontainers.image.source", "org.opencontainers.image.revision", "org.opencontainers.image.version", "org.opencontainers.image.licenses"} {
		if !strings.Contains(text, label+"=") {
			t.Errorf("the image has no %s label", label)
		}
	}
}

// versionLess compares dotted numeric versions (1.26.8 < 1.27).
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			fmt.Sscan(pa[i], &x)
		}
		if i < len(pb) {
			fmt.Sscan(pb[i], &y)
		}
		if x != y {
			return x < y
		}
	}
	return false
}
