package ecr

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

func TestCheckRepository(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"app", true}, {"team/app", true}, {"team/my--app", true}, {"team/my__app", true}, {"a.b_c-d/e", true},
		{"team/my---app", true}, {"a", false}, {"Team/app", false}, {"team/app/", false}, {"/app", false},
		{"team/my___app", false}, {"team/-app", false}, {"team//app", false}, {"team/my._app", false},
		{strings.Repeat("a", 256), true}, {strings.Repeat("a", 257), false}, {"app:v1", false},
	} {
		err := CheckRepository("--repository", tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckRepository(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && (!fixable.Is(err) || !strings.HasPrefix(err.Error(), "--repository ")) {
			t.Errorf("CheckRepository(%q): %v is not a fixable error naming the flag", tc.name, err)
		}
	}
}

func TestCheckTag(t *testing.T) {
	for _, tc := range []struct {
		tag string
		ok  bool
	}{
		{"v1", true}, {"_x", true}, {"1.2.3-rc.1", true}, {strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false}, {".v1", false}, {"-v1", false}, {"v 1", false}, {"", false}, {"a/b", false},
	} {
		if err := CheckTag("--tag", tc.tag); (err == nil) != tc.ok {
			t.Errorf("CheckTag(%q) = %v, want ok=%v", tc.tag, err, tc.ok)
		}
	}
}

func TestRegionsAndPartitions(t *testing.T) {
	for _, tc := range []struct {
		region, partition string
		ok                bool
		hint              string
	}{
		{"us-east-1", "aws", true, ""},
		{"eu-west-1", "aws", true, ""},
		{"cn-north-1", "aws-cn", true, ""},
		{"us-gov-west-1", "aws-us-gov", true, ""},
		{"us-isob-east-1", "aws-iso-b", true, ""},
		{"eusc-de-east-1", "aws-eusc", true, ""},
		{"us-east-9", "aws", false, "did you mean us-east-1 or us-east-2?"},
		{"xx-none-0", "aws", false, "not an AWS region name like"},
		{"US-EAST-1", "aws", false, "not an AWS region name like"},
	} {
		if got := PartitionOf(tc.region); got != tc.partition {
			t.Errorf("PartitionOf(%q) = %q, want %q", tc.region, got, tc.partition)
		}
		err := CheckRegion("--region", tc.region)
		if (err == nil) != tc.ok {
			t.Errorf("CheckRegion(%q) = %v, want ok=%v", tc.region, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("CheckRegion(%q) = %q, want it to contain %q", tc.region, err, tc.hint)
		}
	}
	if err := SamePartition("--replicate-to", "us-east-1", "cn-north-1"); err == nil || !fixable.Is(err) || !strings.Contains(err.Error(), "cannot replicate across partitions") {
		t.Errorf("SamePartition(us-east-1, cn-north-1) = %v", err)
	}
	if err := SamePartition("--replicate-to", "cn-north-1", "cn-northwest-1"); err != nil {
		t.Errorf("SamePartition(cn-north-1, cn-northwest-1) = %v", err)
	}
	for region, host := range map[string]string{
		"us-east-1":     "111122223333.dkr.ecr.us-east-1.amazonaws.com",
		"cn-north-1":    "111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn",
		"us-iso-east-1": "111122223333.dkr.ecr.us-iso-east-1.c2s.ic.gov",
	} {
		if got := RegistryHost("111122223333", region); got != host {
			t.Errorf("RegistryHost(%s) = %s, want %s", region, got, host)
		}
		if r, ok := ParseHost(host); !ok || r.Region != region || r.Partition != PartitionOf(region) {
			t.Errorf("ParseHost(RegistryHost(%s)) = %+v, %v", region, r, ok)
		}
	}
}

// TestRegionsMatchSDK fails when regions_gen.go no longer matches the SDK in go.mod: run
// `go generate ./internal/ecr` after upgrading aws-sdk-go-v2.
func TestRegionsMatchSDK(t *testing.T) {
	tmp := t.TempDir() + "/regions_gen.go"
	cmd := exec.Command("go", "run", "./internal/genregions", tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("genregions: %v\n%s", err, out)
	}
	want, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("regions_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("regions_gen.go is stale: run go generate ./internal/ecr")
	}
}
