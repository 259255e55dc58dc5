package push

import (
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// FuzzParseSource parses arbitrary --source values without loading them: it may look at the file
// system but must never panic, and every refusal must be one the user can fix (exit 2).
func FuzzParseSource(f *testing.F) {
	for _, s := range []string{
		"docker-daemon:app:latest", "docker-daemon:sha256:0123456789abcdef", "oci-layout:/tmp:v1", "oci:.@sha256:" + strings.Repeat("a", 64),
		"docker-archive:/nonexistent.tar:app:v1", "oci-archive:x.tar@sha256:00", "docker://ghcr.io/o/r:v1", "ghcr.io/o/r@sha256:" + strings.Repeat("0", 64),
		"127.0.0.1:5000/app", "ftp://x", "docker-deamon:app", "containers-storage:x", " ", "::", "a:b:c:d", "oci-layout:", "docker-daemon:",
		"UPPER/Repo:v1", "localhost/a/b/c:" + strings.Repeat("t", 129), "oci-layout:\x00", "docker-daemon:a b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		src, err := ParseSource(ref)
		if err != nil {
			if !fixable.Is(err) {
				t.Fatalf("ParseSource(%q): %v is not a fixable error", ref, err)
			}
			return
		}
		if src.String() == "" {
			t.Fatalf("ParseSource(%q) names its source \"\"", ref)
		}
		if err := src.Close(); err != nil {
			t.Fatalf("Close of an unloaded %q: %v", ref, err)
		}
	})
}

// FuzzParsePlatform parses arbitrary --platform values: no panic, and what parses has an OS and
// an architecture and reads back the same.
func FuzzParsePlatform(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm64/v8", "windows/amd64:10.0.17763", "linux", "/", "//", "linux/arm/v7/x", "a/b:c:d", "", "linux/  :", " linux/amd64 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlatform(s)
		if err != nil {
			if !fixable.Is(err) {
				t.Fatalf("ParsePlatform(%q): %v is not a fixable error", s, err)
			}
			return
		}
		if p.OS == "" || p.Architecture == "" {
			t.Fatalf("ParsePlatform(%q) = %+v without an OS or architecture", s, p)
		}
		again, err := ParsePlatform(p.String())
		if err != nil || again.String() != p.String() {
			t.Fatalf("ParsePlatform(%q) = %q, which reads back as %q (%v)", s, p.String(), again.String(), err)
		}
	})
}
