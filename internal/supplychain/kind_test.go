package supplychain

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/push"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		artifactType string
		annotations  map[string]string
		tag          string
		want         Kind
	}{
		{TypeNotarySignature, nil, "", Signature},
		{TypeCosignSignature, nil, "", Signature},
		{TypeSigstoreBundle, map[string]string{bundlePredicate: cosignSignPred}, "", Signature},
		{TypeSigstoreBundle, map[string]string{bundlePredicate: "https://slsa.dev/provenance/v1"}, "", Attestation},
		{"application/vnd.oci.image.config.v1+json", nil, "sha256-abc.sig", Signature},
		{"", nil, "sha256-abc.att", Attestation},
		{"", nil, "sha256-abc.sbom", SBOM},
		{TypeSPDX, nil, "", SBOM},
		{"text/spdx", nil, "", SBOM},
		{TypeCycloneDX, nil, "", SBOM},
		{"application/vnd.cyclonedx+xml", nil, "", SBOM},
		{TypeCosignSBOM, nil, "", SBOM},
		{TypeInToto, nil, "", Attestation},
		{TypeDSSE, nil, "", Attestation},
		{"application/vnd.aquasec.trivy.report.sarif.v1", nil, "", Other},
		{"application/vnd.cncf.helm.config.v1+json", nil, "", Other},
	} {
		if got := Classify(tc.artifactType, tc.annotations, tc.tag); got != tc.want {
			t.Errorf("Classify(%q, %v, %q) = %s, want %s", tc.artifactType, tc.annotations, tc.tag, got, tc.want)
		}
	}
}

func TestParseSelection(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   string
		sig    bool
		sbom   bool
		other  bool
		errHas string
	}{
		{in: "", want: "all", sig: true, sbom: true, other: true},
		{in: "ALL", want: "all", sig: true, sbom: true, other: true},
		{in: "none", want: "none"},
		{in: "signatures", want: "signatures", sig: true},
		{in: "signatures, sboms", want: "sboms,signatures", sig: true, sbom: true},
		{in: "sbom,application/vnd.aquasec.trivy.report.sarif.v1", want: "application/vnd.aquasec.trivy.report.sarif.v1,sboms", sbom: true, other: true},
		{in: "signatures,none", errHas: "cannot be combined"},
		{in: "signatures,keys", errHas: `"keys" is not`},
		{in: ",", errHas: "selects nothing"},
	} {
		sel, err := ParseSelection(tc.in)
		if tc.errHas != "" {
			if !fixable.Is(err) || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("ParseSelection(%q): %v, want %q", tc.in, err, tc.errHas)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseSelection(%q): %v", tc.in, err)
		}
		if sel.String() != tc.want {
			t.Errorf("ParseSelection(%q) = %s, want %s", tc.in, sel, tc.want)
		}
		if again, err := ParseSelection(sel.String()); err != nil || again.String() != sel.String() {
			t.Errorf("%q does not read back: %v", sel, err)
		}
		if sel.Includes(Signature, TypeNotarySignature) != tc.sig || sel.Includes(SBOM, TypeSPDX) != tc.sbom ||
			sel.Includes(Other, "application/vnd.aquasec.trivy.report.sarif.v1") != tc.other {
			t.Errorf("ParseSelection(%q) includes the wrong kinds", tc.in)
		}
	}
}

func TestSelectKeepsChainsWhole(t *testing.T) {
	h := func(c string) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(c, 64)} }
	img, sbom, sig, sbomSig := h("a"), h("b"), h("c"), h("d")
	ref := func(d, subject v1.Hash, at string) *push.Referrer {
		return &push.Referrer{Artifact: &push.Artifact{Digest: d}, Subject: subject, ArtifactType: at}
	}
	refs := []*push.Referrer{ref(sbom, img, TypeSPDX), ref(sig, img, TypeNotarySignature), ref(sbomSig, sbom, TypeNotarySignature)}
	sigs, _ := ParseSelection("signatures")
	if got := Select(refs, sigs); len(got) != 1 || got[0].Digest != sig {
		t.Fatalf("signatures: %v", got)
	}
	if got := Select(refs, All()); len(got) != 3 {
		t.Fatalf("all: %v", got)
	}
	if got := Select(refs, None()); len(got) != 0 {
		t.Fatalf("none: %v", got)
	}
}

func TestParseSeverity(t *testing.T) {
	if s, err := ParseSeverity(" high "); err != nil || s != "HIGH" {
		t.Fatalf("high: %q %v", s, err)
	}
	if _, err := ParseSeverity("UNDEFINED"); !fixable.Is(err) {
		t.Fatalf("UNDEFINED is not a threshold: %v", err)
	}
}

func TestMarkdownStaysInItsCells(t *testing.T) {
	f := &Findings{Repository: "r", Digest: "sha256:x", ScanType: "BASIC", Threshold: "HIGH", Counts: map[string]int{"HIGH": 1}, Total: 1, Failed: true,
		Top: []Finding{{ID: "CVE-1|2", Severity: "HIGH", Package: "a|b\nc", Version: "<1>", URI: "https://e/x)y"}}}
	md := f.Markdown()
	row := md[strings.LastIndex(md, "| HIGH |"):]
	if strings.Count(strings.TrimSpace(row), "\n") != 0 || strings.Count(strings.ReplaceAll(row, `\|`, ""), "|") != 7 ||
		!strings.Contains(row, "&lt;1&gt;") || !strings.Contains(row, "(https://e/x%29y)") {
		t.Fatalf("row %q", row)
	}
}

func TestOptions(t *testing.T) {
	o, err := ParseOptions("signatures", true, true, "high")
	if err != nil || o.FailOnSeverity != "HIGH" || !o.Referrers.Includes(Signature, "") || o.Referrers.Includes(SBOM, "") {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := ParseOptions("all", false, false, "severe"); !fixable.Is(err) {
		t.Fatalf("bad severity: %v", err)
	}
	for _, tc := range []struct {
		o    Options
		p    Plan
		fail bool
	}{
		{Options{Referrers: None(), RequireReferrers: true}, Plan{ECR: true}, true},
		{Options{FailOnSeverity: "HIGH"}, Plan{ECR: false}, true},
		{Options{FailOnSeverity: "HIGH"}, Plan{ECR: true, Creates: true, ScanOnPush: false}, true},
		{Options{FailOnSeverity: "HIGH"}, Plan{ECR: true, Creates: false}, false},
		{Options{Referrers: None(), RequireSignature: true}, Plan{ECR: true}, false}, // managed signatures replicate by themselves
	} {
		if err := tc.o.Check(tc.p); (err != nil) != tc.fail || (err != nil && !fixable.Is(err)) {
			t.Errorf("%+v with %+v: %v", tc.o, tc.p, err)
		}
	}
}
