package supplychain

import (
	"sort"
	"strings"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Kind is the group a referrer belongs to, what --referrers selects by.
type Kind string

// The kinds. Other is anything that is neither (a vulnerability report, a Helm chart …): carried by
// "all", selectable by its artifact type.
const (
	Signature   Kind = "signature"
	SBOM        Kind = "sbom"
	Attestation Kind = "attestation"
	Other       Kind = "other"
)

// Artifact types the classification knows by name (the values the tools write).
const (
	TypeNotarySignature = "application/vnd.cncf.notary.signature"            // Notation, AWS Signer, ECR managed signing
	TypeCosignSignature = "application/vnd.dev.cosign.artifact.sig.v1+json"  // cosign --registry-referrers-mode=oci-1-1
	TypeCosignSBOM      = "application/vnd.dev.cosign.artifact.sbom.v1+json" // cosign attach sbom (OCI 1.1)
	TypeSigstoreBundle  = "application/vnd.dev.sigstore.bundle.v0.3+json"    // cosign v3 bundles (signature or attestation)
	TypeInToto          = "application/vnd.in-toto+json"
	TypeDSSE            = "application/vnd.dsse.envelope.v1+json"
	TypeSPDX            = "application/spdx+json"
	TypeCycloneDX       = "application/vnd.cyclonedx+json"
	// bundlePredicate is the annotation cosign puts on a bundle saying what it holds.
	bundlePredicate = "dev.sigstore.bundle.predicateType"
	cosignSignPred  = "https://sigstore.dev/cosign/sign/v1"
)

// Classify puts a referrer in a kind from its artifact type, its annotations and, for cosign's tag
// scheme, its tag suffix (.sig, .att, .sbom).
func Classify(artifactType string, annotations map[string]string, tag string) Kind {
	switch {
	case strings.HasSuffix(tag, ".sig"):
		return Signature
	case strings.HasSuffix(tag, ".att"):
		return Attestation
	case strings.HasSuffix(tag, ".sbom"):
		return SBOM
	}
	t := strings.ToLower(artifactType)
	switch {
	case strings.HasPrefix(t, "application/vnd.dev.sigstore.bundle"):
		if p := annotations[bundlePredicate]; p != "" && p != cosignSignPred {
			return Attestation
		}
		return Signature
	case t == TypeNotarySignature, t == TypeCosignSignature, strings.HasSuffix(t, "signature"),
		strings.Contains(t, "cosign.artifact.sig"), t == "application/pgp-signature":
		return Signature
	case strings.Contains(t, "spdx"), strings.Contains(t, "cyclonedx"), strings.Contains(t, "syft"),
		strings.Contains(t, "sbom"):
		return SBOM
	case strings.Contains(t, "in-toto"), strings.Contains(t, "dsse"), strings.Contains(t, "provenance"),
		strings.Contains(t, "slsa"), strings.Contains(t, "attestation"), strings.Contains(t, "cosign.artifact.att"):
		return Attestation
	}
	return Other
}

// Selection is what --referrers carries: none, all (the default), or kinds and artifact types.
type Selection struct {
	none  bool
	kinds map[Kind]bool
	types map[string]bool
}

// All carries every referrer.
func All() Selection { return Selection{} }

// None carries no referrer.
func None() Selection { return Selection{none: true} }

var kindNames = map[string]Kind{
	"signatures": Signature, "signature": Signature, "sigs": Signature, "sig": Signature,
	"sboms": SBOM, "sbom": SBOM,
	"attestations": Attestation, "attestation": Attestation, "atts": Attestation, "att": Attestation,
	"other": Other, "others": Other,
}

// ParseSelection reads --referrers: "none", "all" or "" (all), or a comma-separated list of
// signatures, sboms, attestations, other and artifact types (TYPE/SUBTYPE, e.g. application/spdx+json).
func ParseSelection(s string) (Selection, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "all":
		return All(), nil
	case "none":
		return None(), nil
	}
	sel := Selection{kinds: map[Kind]bool{}, types: map[string]bool{}}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		p := strings.TrimSpace(part)
		if p == "" {
			continue
		}
		if k, ok := kindNames[strings.ToLower(p)]; ok {
			sel.kinds[k] = true
			continue
		}
		if typ, sub, ok := strings.Cut(p, "/"); ok && typ != "" && sub != "" && !strings.ContainsAny(p, " \t") {
			sel.types[strings.ToLower(p)] = true
			continue
		}
		switch strings.ToLower(p) {
		case "none", "all":
			return Selection{}, fixable.New("--referrers %q: %s cannot be combined with other values", s, strings.ToLower(p))
		}
		return Selection{}, fixable.New("--referrers %q: %q is not none, all, signatures, sboms, attestations, other or an artifact type (type/subtype, e.g. application/spdx+json)", s, p)
	}
	if len(sel.kinds) == 0 && len(sel.types) == 0 {
		return Selection{}, fixable.New("--referrers %q selects nothing: use none, all, or signatures,sboms,attestations", s)
	}
	return sel, nil
}

// None reports whether the selection carries nothing.
func (s Selection) None() bool { return s.none }

// Includes reports whether a referrer of kind k and artifactType is carried.
func (s Selection) Includes(k Kind, artifactType string) bool {
	switch {
	case s.none:
		return false
	case s.kinds == nil && s.types == nil:
		return true
	}
	return s.kinds[k] || s.types[strings.ToLower(artifactType)]
}

// String is the selection as --referrers would take it.
func (s Selection) String() string {
	if s.none {
		return "none"
	}
	if s.kinds == nil && s.types == nil {
		return "all"
	}
	var out []string
	for k := range s.kinds {
		out = append(out, string(k)+"s")
	}
	for t := range s.types {
		out = append(out, t)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
