package replicate

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStatusRendering(t *testing.T) {
	sts := []Status{
		{Account: prod, Region: "us-east-1", URI: prod + ".dkr.ecr.us-east-1.amazonaws.com/team/app@sha256:aa", Status: StatusComplete, Seconds: 3.25},
		{Account: staging, Region: "eu-west-1", URI: staging + ".dkr.ecr.eu-west-1.amazonaws.com/team/app@sha256:aa", Status: StatusFailed, FailureCode: "Replication|AccessDenied"},
		{Account: prod, Region: "eu-west-1", URI: "x/team/app@sha256:aa", Status: StatusCopied, Seconds: 1},
	}
	var text strings.Builder
	if err := WriteTable(&text, sts); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ACCOUNT") {
		t.Fatalf("table:\n%s", text.String())
	}
	if !strings.Contains(lines[2], "FAILED (Replication|AccessDenied)") || !strings.Contains(lines[1], "3.2") {
		t.Errorf("table rows:\n%s", text.String())
	}
	var md strings.Builder
	if err := WriteMarkdown(&md, sts); err != nil {
		t.Fatal(err)
	}
	mlines := strings.Split(strings.TrimSpace(md.String()), "\n")
	if len(mlines) != 5 || !strings.HasPrefix(mlines[1], "|---") {
		t.Fatalf("markdown:\n%s", md.String())
	}
	for _, l := range mlines[2:] {
		if n := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|"); n != 6 {
			t.Errorf("row %q has %d cell borders, want 6", l, n)
		}
	}
	b, _ := json.Marshal(sts[0])
	if want := `{"account":"` + prod + `","region":"us-east-1","uri":"` + sts[0].URI + `","status":"COMPLETE","seconds":3.25}`; string(b) != want {
		t.Errorf("json %s\nwant %s", b, want)
	}
}
