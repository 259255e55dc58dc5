package fault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration that reads "150ms" from JSON/YAML.
// (sigs.k8s.io/yaml converts YAML to JSON, so the JSON methods cover both.)
type Duration struct {
	time.Duration
}

// D wraps a time.Duration.
func D(d time.Duration) Duration { return Duration{d} }

// MarshalJSON writes the duration as a Go duration string, e.g. "150ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.Duration.String()) }

// UnmarshalJSON reads a Go duration string; bare numbers are rejected because their unit
// would be a guess.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"150ms\", got %s", b)
	}
	if s == "" {
		d.Duration = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	if v < 0 {
		return fmt.Errorf("duration %q must not be negative", s)
	}
	d.Duration = v
	return nil
}
