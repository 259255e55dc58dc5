package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/term"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/googleauth"
	"github.com/ecrpush/ecrpush/internal/pipeline"
	"github.com/ecrpush/ecrpush/internal/platform"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/internal/supplychain"
)

// pushFlags are push's flags; replication flags live in pushReplicationFlags.
type pushFlags struct {
	id               identityFlags
	source           string
	repository       string
	destination      string
	destinations     listFlag // every --destination; destination is the first
	tags             listFlag
	createRepository bool
	tagImmutability  bool
	scanOnPush       bool
	kmsKey           string
	platform         string
	jobs             int
	output           string
	replication      replicationFlags
	googleCreds      string // --source-google-credentials (cli/sync.go's sourceKeychain)
	dryRun           bool
	retries          int
	compressionLevel int
	ecrDest          bool // validate: the image goes to ECR
	referrers        string
	requireReferrers bool
	requireSignature bool
	failOnSeverity   string
	supply           supplychain.Options          // validate: parsed from the four flags above
	googleHosts      listFlag                     // --source-google-hosts: hosts besides Google's that get the Google token
	extra            settingsFlags                // the destination settings (lifecycle policy, tags, …) and --restore-archived
	settings         replicate.RepositorySettings // validate: every repository setting, one value
}

func pushCmd() command {
	return command{name: "push", short: "federate, push an image to ECR, replicate it, and report", flags: func(fs *flag.FlagSet, stdio IO) func(context.Context, []string) error {
		var f pushFlags
		f.id.register(fs)
		fs.StringVar(&f.source, "source", "", "image to push: docker-daemon:IMG | oci-layout:DIR[:TAG|@DIGEST] | docker-archive:FILE | oci-archive:FILE | REGISTRY/REPO[:TAG|@DIGEST]")
		fs.StringVar(&f.repository, "repository", "", "ECR repository in the ci account (the account of --role-arn)")
		fs.Var(&f.destinations, "destination", "full destination REGISTRY/REPO instead of --repository (any registry); repeatable: one read of the source, pushed to each")
		fs.Var(&f.tags, "tag", "tag to push; repeatable, or comma-separated")
		fs.BoolVar(&f.createRepository, "create-repository", true, "create the ECR repository when it is missing")
		fs.BoolVar(&f.tagImmutability, "tag-immutability", false, "create the repository with immutable tags")
		fs.BoolVar(&f.scanOnPush, "scan-on-push", true, "create the repository with scan on push")
		fs.StringVar(&f.kmsKey, "kms-key", "", "create the repository encrypted with this KMS key ARN")
		fs.StringVar(&f.platform, "platform", "", "push only this platform of a multi-arch source: OS/ARCH[/VARIANT]")
		fs.IntVar(&f.jobs, "jobs", push.DefaultJobs, "parallel blob uploads")
		fs.IntVar(&f.retries, "retries", push.DefaultRetries, "sends of one registry request in all, 1 to 10 (throttles, 5xx, dropped or stalled connections are resent within a per-push time budget)")
		fs.IntVar(&f.compressionLevel, "compression-level", push.DefaultCompressionLevel, "gzip level, 1 (fastest) to 9 (smallest), for layers the source holds uncompressed (docker archives, the daemon)")
		fs.StringVar(&f.output, "output", "text", "report format: text, or json (written to stdout on every platform, beside GitHub outputs and Cloud Build's file)")
		fs.StringVar(&f.referrers, "referrers", "all", "what travels with the image from the source: all, none, or signatures,sboms,attestations (or artifact types)")
		fs.BoolVar(&f.requireReferrers, "require-referrers", false, "fail (exit 2) when a replication destination lacks a referrer the ci registry holds (else a warning)")
		fs.BoolVar(&f.requireSignature, "require-signature", false, "wait for a signature referrer (e.g. ECR managed signing) on the pushed digest in the ci registry and every destination; fail without one")
		fs.StringVar(&f.failOnSeverity, "fail-on-severity", "", "wait for ECR's scan on push and fail (exit 2, after pushing) on findings of this severity or worse: CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL")
		fs.BoolVar(&f.dryRun, "dry-run", false, "federate, read the source and check every destination, then print the plan (what would be created, merged, uploaded, tagged) and write nothing")
		fs.StringVar(&f.googleCreds, "source-google-credentials", "", "Google credential configuration for reading the source (Artifact Registry from AWS: an AWS-sourced workload identity federation config)")
		fs.Var(&f.googleHosts, "source-google-hosts", "registry hosts besides *.pkg.dev, gcr.io and *.gcr.io that get the Google access token (comma-separated or repeated)")
		f.replication.register(fs)
		f.extra.registerExtra(fs)
		return func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fixable.New("push takes flags only, got %q (did you mean --source %s?)", strings.Join(args, " "), args[0])
			}
			return runPush(ctx, &f, stdio, stdio.platform())
		}
	}}
}

// validate checks every input before anything touches the network, so bad input never half-writes.
func (f *pushFlags) validate() error {
	if f.source == "" {
		return fixable.New("--source is required: the image to push, e.g. oci-layout:./image or docker-daemon:app:latest")
	}
	if len(f.destinations) > 0 {
		f.destination = f.destinations[0]
	}
	var err error
	if f.ecrDest, err = pipeline.CheckTarget(f.repository, f.destinations); err != nil {
		return err
	}
	for _, h := range f.googleHosts {
		if err := googleauth.CheckHost(h); err != nil {
			return err
		}
	}
	if f.tags, err = pipeline.CheckTags(f.tags); err != nil {
		return err
	}
	if f.platform != "" {
		if _, err := push.ParsePlatform(f.platform); err != nil {
			return fixable.Wrap(err, fmt.Sprintf("--platform %q must be OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8", f.platform))
		}
	}
	f.extra.create, f.extra.tagImmutability, f.extra.scanOnPush, f.extra.kmsKey = f.createRepository, f.tagImmutability, f.scanOnPush, f.kmsKey
	if f.settings, err = f.extra.build(); err != nil {
		return err
	}
	if f.supply, err = supplychain.ParseOptions(f.referrers, f.requireReferrers, f.requireSignature, f.failOnSeverity); err != nil {
		return err
	}
	if f.retries < 1 || f.retries > 10 {
		return fixable.New("--retries %d is out of range: 1 to 10 sends of one request", f.retries)
	}
	if f.compressionLevel < 1 || f.compressionLevel > 9 {
		return fixable.New("--compression-level %d is out of range: 1 (fastest) to 9 (smallest)", f.compressionLevel)
	}
	if f.jobs < 1 || f.jobs > 64 {
		return fixable.New("--jobs %d is out of range: 1 to 64", f.jobs)
	}
	if f.output != "text" && f.output != "json" {
		return fixable.New("--output %q is not text or json", f.output)
	}
	if f.kmsKey != "" && !strings.HasPrefix(f.kmsKey, "arn:aws") {
		return fixable.New("--kms-key %q must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)", f.kmsKey)
	}
	return f.replication.validate(f.destination != "")
}

func runPush(ctx context.Context, f *pushFlags, stdio IO, plat platform.Platform) error {
	if err := f.validate(); err != nil {
		return err
	}
	job, err := f.job(stdio)
	if err != nil {
		return err
	}
	env := pipeline.Env{Platform: plat, Log: newLogger(stdio.Err), Progress: stdio.Err, Terminal: isTerminal(stdio.Err), Out: stdio.Out}
	_, err = pipeline.Push(ctx, env, job)
	return err
}

// job turns the validated flags into the pipeline's job.
func (f *pushFlags) job(stdio IO) (pipeline.Job, error) {
	// Identity flags are validated even when unused, so a typo never passes silently.
	opts, err := f.id.options(stdio)
	if f.ecrDest && err != nil {
		return pipeline.Job{}, err
	}
	if f.ecrDest && len(f.replication.to) > 0 && f.replication.mode != "off" {
		// The ci region is known now: a destination in another partition, or a region the SDK does not
		// know, is refused before anything talks to AWS (the ci account is checked after federation).
		if _, err := replicate.ParseDestinations(f.replication.to, "000000000000", opts.Region, f.replication.roleName); err != nil {
			return pipeline.Job{}, err
		}
	}
	job := pipeline.Job{
		Identity: opts,
		Source:   f.source,
		SourceOptions: []push.SourceOption{push.WithSourceLogger(newLogger(stdio.Err)), push.WithDockerHost(stdio.Getenv("DOCKER_HOST")),
			push.WithCompressionLevel(f.compressionLevel)},
		Repository:   f.repository,
		Destinations: f.destinations,
		Tags:         f.tags,
		Settings:     pipeline.Settings{RepositorySettings: f.settings},
		Upload:       pipeline.Upload{Jobs: f.jobs, Retries: f.retries},
		Replication: pipeline.Replication{To: f.replication.to, Mode: f.replication.mode, Configure: f.replication.configure,
			Prefix: f.replication.prefix, Timeout: f.replication.timeout, RoleName: f.replication.roleName, RestoreArchived: f.extra.restoreArchived},
		SupplyChain: f.supply,
		Platform:    f.platform,
		DryRun:      f.dryRun,
	}
	if f.platform != "" {
		p, _ := push.ParsePlatform(f.platform)
		job.SourceOptions = append(job.SourceOptions, push.WithPlatform(p))
	}
	if f.googleCreds != "" {
		job.SourceKeychain = func(ctx context.Context, sess *federate.Session) (authn.Keychain, error) {
			return sourceKeychain(ctx, f.googleCreds, stdio, func() *federate.Session { return sess }, f.googleHosts...)
		}
	}
	return job, nil
}

func isTerminal(w any) bool {
	if f, ok := w.(interface{ Fd() uintptr }); ok {
		return term.IsTerminal(int(f.Fd()))
	}
	return false
}
