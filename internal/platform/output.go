package platform

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// writeOutputs appends step outputs to the GITHUB_OUTPUT file as multi-line values: name<<DELIMITER, the
// value, DELIMITER. GitHub's "Workflow commands" page asks for a delimiter that cannot occur on its own
// line within the value, and @actions/core uses a random ghadelimiter_<uuid> and refuses a value that holds
// it; go-githubactions uses one fixed delimiter, so a value (an image URI, a replication failure message)
// holding that line would end the output early and inject the rest as other outputs. Here every write
// gets a fresh random delimiter, checked against the name and the value.
func writeOutputs(path string, outputs [][2]string) error {
	var b strings.Builder
	for _, kv := range outputs {
		name, value := kv[0], kv[1]
		if name == "" || strings.ContainsAny(name, "\r\n=<") {
			return fmt.Errorf("output name %q is not usable in GITHUB_OUTPUT", name)
		}
		delim, err := outputDelimiter(name, value)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s<<%s\n%s\n%s\n", name, delim, value, delim)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("GITHUB_OUTPUT %s: %w", path, err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("GITHUB_OUTPUT %s: %w", path, err)
	}
	return f.Close()
}

// outputDelimiter is ghadelimiter_ and 16 random bytes in hex, drawn again in the (astronomically unlikely)
// case that the name or value holds it.
func outputDelimiter(name, value string) (string, error) {
	for range 4 {
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", fmt.Errorf("GITHUB_OUTPUT delimiter: %w", err)
		}
		d := "ghadelimiter_" + hex.EncodeToString(raw[:])
		if !strings.Contains(name, d) && !strings.Contains(value, d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("output %s: no delimiter absent from the value", name)
}

// MaxBuilderOutput is what Cloud Build keeps of $BUILDER_OUTPUT/output: "Only the first 50KB of data is
// stored" (Cloud Build API, Results.buildStepOutputs). Counted as 50,000 bytes, the smaller reading of
// "50KB", so that no reading cuts the JSON short.
const MaxBuilderOutput = 50_000

// builderOutput is the report as JSON under MaxBuilderOutput: in full when it fits; else without the
// replicas' URIs (a later step has the digest and each destination's account, region and status); else the
// digest, registry, repository and as many images as fit, marked truncated.
func builderOutput(r *Report) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(b) < MaxBuilderOutput {
		return b, nil
	}
	slim := *r
	slim.Replication = append([]Replica(nil), r.Replication...)
	for i := range slim.Replication {
		slim.Replication[i].URI = ""
	}
	if b, err = json.Marshal(&slim); err == nil && len(b) < MaxBuilderOutput {
		return b, nil
	}
	type short struct {
		Digest     string  `json:"digest"`
		Registry   string  `json:"registry"`
		Repository string  `json:"repository"`
		Images     []Image `json:"images"`
		Truncated  bool    `json:"truncated"`
	}
	out := short{Digest: r.Digest, Registry: r.Registry, Repository: r.Repository, Images: []Image{}, Truncated: true}
	for _, im := range r.Images {
		out.Images = append(out.Images, im)
		if b, _ := json.Marshal(out); len(b) >= MaxBuilderOutput {
			// This image's tags do not all fit: keep its URI, then stop.
			out.Images[len(out.Images)-1] = Image{URI: im.URI, Tags: []string{}}
			if b, _ := json.Marshal(out); len(b) >= MaxBuilderOutput {
				out.Images = out.Images[:len(out.Images)-1]
			}
			break
		}
	}
	return json.Marshal(out)
}
