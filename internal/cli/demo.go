package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/platform"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/sandbox"
)

// demoDestinations are prod and staging in both sandbox regions.
var demoDestinations = []string{
	sandbox.ProdAccount + ":us-east-1", sandbox.ProdAccount + ":eu-west-1",
	sandbox.StagingAccount + ":us-east-1", sandbox.StagingAccount + ":eu-west-1",
}

func demoCmd() command {
	return command{name: "demo", short: "run the whole pipeline on an in-process sandbox with a generated image", flags: func(fs *flag.FlagSet, stdio IO) func(context.Context, []string) error {
		output := fs.String("output", "text", "report format: text or json")
		return func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fixable.New("demo takes no arguments, got %q", strings.Join(args, " "))
			}
			return runDemo(ctx, stdio, *output)
		}
	}}
}

func runDemo(ctx context.Context, stdio IO, output string) error {
	cfg := sandbox.DefaultConfig()
	cfg.ReplicationDelay = sandbox.Dur(500 * time.Millisecond)
	sb, err := sandbox.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer sb.Close()
	fmt.Fprintln(stdio.Err, "ecrpush demo: sandbox up: STS, ECR API, 6 registries (ci, prod, staging × us-east-1, eu-west-1), GitHub token service")

	dir, err := os.MkdirTemp("", "ecrpush-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	digest, err := writeDemoImage(filepath.Join(dir, "image"))
	if err != nil {
		return fmt.Errorf("generate the demo image: %w", err)
	}
	fmt.Fprintf(stdio.Err, "ecrpush demo: generated a 2-platform image index %s as an OCI layout\n", digest)

	// The pipeline runs exactly as in a GitHub job: the same environment a runner gives a step, pointed at
	// the sandbox (this process only), and the same flags a workflow passes.
	env := map[string]string{}
	for _, kv := range sb.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, k := range []string{"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_ECR", "AWS_EC2_METADATA_DISABLED"} {
		if err := os.Setenv(k, env[k]); err != nil {
			return err
		}
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		os.Unsetenv(k)
	}
	os.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-aws-config"))
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-aws-credentials"))
	jobEnv := func(k string) string { return env[k] }

	f := &pushFlags{
		id:     identityFlags{roleARN: env["ECRPUSH_ROLE_ARN"], region: "us-east-1", identity: "github", audience: "sts.amazonaws.com"},
		source: "oci-layout:" + filepath.Join(dir, "image") + ":demo", repository: "demo/app", tags: listFlag{"v1.0.0", "latest"},
		createRepository: true, scanOnPush: true, jobs: 8, output: output, referrers: "all",
		retries: push.DefaultRetries, compressionLevel: push.DefaultCompressionLevel,
		replication: replicationFlags{to: demoDestinations, mode: "native", configure: true, timeout: 2 * time.Minute},
	}
	plat := platform.New(platform.Local, platform.Options{Getenv: jobEnv, Out: stdio.Out, Log: stdio.Err, JSON: output == "json"})
	if err := runPush(ctx, f, IO{In: stdio.In, Out: stdio.Out, Err: stdio.Err, Getenv: jobEnv}, plat); err != nil {
		return err
	}
	// Read every copy back from its own registry, with that account's own credentials.
	landed, err := sb.ReadBack(ctx, "demo/app", digest)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if output != "json" {
		fmt.Fprintln(stdio.Out, "\nread back from each destination registry (sandbox endpoints), with that account's credentials:")
		for _, l := range landed {
			fmt.Fprintf(stdio.Out, "  %-8s %-10s %s  %s\n", sb.AccountName(l.ID.Account), l.ID.Region, l.Digest, l.Ref)
		}
		fmt.Fprintln(stdio.Out, "\nEvery copy has the pushed digest. Try the pipeline yourself: run `go run . sandbox` in one terminal,")
		fmt.Fprintln(stdio.Out, "paste its export lines into another, then:")
		fmt.Fprintln(stdio.Out, "  go run . push --source oci-layout:DIR --repository app --tag v1 --role-arn \"$ECRPUSH_ROLE_ARN\" \\")
		fmt.Fprintln(stdio.Out, "    --replicate-to 444455556666:us-east-1,777788889999:eu-west-1 --configure-replication")
	}
	return nil
}

// writeDemoImage writes a small two-platform index (linux/amd64, linux/arm64) as an OCI layout tagged "demo".
func writeDemoImage(dir string) (v1.Hash, error) {
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		body := []byte("hello from ecrpush on linux/" + arch + "\n")
		tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(0, 0)})
		tw.Write(body)
		tw.Close()
		data := buf.Bytes()
		layer, err := tarball.LayerFromOpener(func() (io_ReadCloser, error) { return nopCloser(bytes.NewReader(data)), nil }, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return v1.Hash{}, err
		}
		img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
		if err != nil {
			return v1.Hash{}, err
		}
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		cf, err := img.ConfigFile()
		if err != nil {
			return v1.Hash{}, err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		cf.Config.Cmd = []string{"cat", "/hello.txt"}
		cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return v1.Hash{}, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "demo"})); err != nil {
		return v1.Hash{}, err
	}
	return idx.Digest()
}
