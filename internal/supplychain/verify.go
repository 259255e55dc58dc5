package supplychain

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Row is a destination's referrers in the report (the replication row's "referrers" field).
type Row struct {
	Expected int        `json:"expected"`
	Present  int        `json:"present"`
	Missing  []Artifact `json:"missing,omitempty"`
	Error    string     `json:"error,omitempty"`
}

// OK reports whether the destination holds everything expected.
func (r *Row) OK() bool { return r != nil && r.Error == "" && len(r.Missing) == 0 }

// VerifyOptions bound Verify.
type VerifyOptions struct {
	// Require makes a destination that lacks an artifact a fixable error (--require-referrers); without
	// it the rows say what is missing and Warnings words it.
	Require bool
	// Timeout is how long to wait for artifacts still replicating (default 2m): native replication
	// copies each referrer as its own push, so a referrer can land after its image's COMPLETE.
	Timeout  time.Duration
	Interval time.Duration // between reads of a destination (default 5s)
}

// Expected lists what the ci registry holds for digest (and, for an index, for each of its
// images) that sel carries: the set every destination must hold too.
func Expected(ctx context.Context, ci *Registry, sel Selection, subjects ...v1.Hash) ([]Artifact, error) {
	if sel.None() {
		return nil, nil
	}
	all, err := ci.Referrers(ctx, subjects...)
	if err != nil {
		return nil, err
	}
	kept := map[string]bool{}
	for _, s := range subjects {
		kept[s.String()] = true
	}
	var out []Artifact
	for _, a := range all {
		if sel.Includes(a.Kind, a.ArtifactType) && kept[a.Subject] {
			kept[a.Digest] = true
			out = append(out, a)
		}
	}
	return out, nil
}

// Verify reads every destination with its own credentials (after replication is COMPLETE) and
// returns one Row per destination, in order: which of want it holds and which it lacks. With
// Require, a destination still lacking something after the timeout is a fixable error naming it.
func Verify(ctx context.Context, want []Artifact, dests []*Registry, subjects []v1.Hash, o VerifyOptions) ([]Row, error) {
	rows := make([]Row, len(dests))
	if len(want) == 0 {
		for i := range rows {
			rows[i] = Row{}
		}
		return rows, nil
	}
	timeout, interval := orDefault(o.Timeout, 2*time.Minute), orDefault(o.Interval, 5*time.Second)
	var wg sync.WaitGroup
	for i, d := range dests {
		wg.Go(func() {
			row := Row{Expected: len(want)}
			err := poll(ctx, timeout, interval, func() (bool, error) {
				have, err := d.Referrers(ctx, subjects...)
				if err != nil {
					return false, err
				}
				row.Missing = missing(want, have)
				row.Present = len(want) - len(row.Missing)
				return len(row.Missing) == 0, nil
			})
			if err != nil && !errors.Is(err, errTimeout) {
				row.Error = err.Error()
			}
			rows[i] = row
		})
	}
	wg.Wait()
	var lines []string
	denied := false
	for i, r := range rows {
		switch {
		case r.Error != "":
			lines = append(lines, fmt.Sprintf("%s could not be read (%s)", dests[i].Name, r.Error))
			denied = true
		case len(r.Missing) > 0:
			lines = append(lines, fmt.Sprintf("%s lacks %s", dests[i].Name, artifactList(r.Missing)))
		}
	}
	if len(lines) == 0 || !o.Require {
		return rows, nil
	}
	hint := "native replication copies referrers pushed after it was configured: push them again, or use --replication copy"
	if denied {
		hint = "grant ecr:BatchGetImage on the repository to the destination roles; " + hint
	}
	return rows, fixable.New("--require-referrers: the image is replicated, but %s: %s", strings.Join(lines, "; "), hint)
}

// Warnings words what rows lack, one line per destination (for runs without --require-referrers).
func Warnings(rows []Row, dests []*Registry) []string {
	var out []string
	for i, r := range rows {
		switch {
		case i >= len(dests):
		case r.Error != "":
			out = append(out, fmt.Sprintf("referrers at %s not verified: %s", dests[i].Name, r.Error))
		case len(r.Missing) > 0:
			out = append(out, fmt.Sprintf("%s lacks %d of %d referrers: %s", dests[i].Name, len(r.Missing), r.Expected, artifactList(r.Missing)))
		}
	}
	return out
}

func missing(want, have []Artifact) []Artifact {
	got := map[string]bool{}
	for _, h := range have {
		got[h.Digest] = true
	}
	var out []Artifact
	for _, w := range want {
		if !got[w.Digest] {
			out = append(out, w)
		}
	}
	return out
}

func artifactList(as []Artifact) string {
	var s []string
	for _, a := range as {
		s = append(s, a.String())
	}
	return strings.Join(s, ", ")
}
