package cli

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/term"

	"github.com/ecrpush/ecrpush/internal/credhelper"
	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/googleauth"
	"github.com/ecrpush/ecrpush/internal/platform"
	"github.com/ecrpush/ecrpush/internal/push"
)

var (
	// ECR's repository name rule (CreateRepository's repositoryName pattern), 2 to 256 characters.
	repositoryRe = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	// The OCI distribution spec's tag rule; ECR allows the same 128 characters.
	tagRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
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
	googleCreds      string   // --source-google-credentials (cli/sync.go's sourceKeychain)
	googleHosts      listFlag // --source-google-hosts: hosts besides Google's that get the Google token
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
		fs.StringVar(&f.output, "output", "text", "report format on a terminal: text or json")
		fs.StringVar(&f.googleCreds, "source-google-credentials", "", "Google credential configuration for reading the source (Artifact Registry from AWS: an AWS-sourced workload identity federation config)")
		fs.Var(&f.googleHosts, "source-google-hosts", "registry hosts besides *.pkg.dev, gcr.io and *.gcr.io that get the Google access token (comma-separated or repeated)")
		f.replication.register(fs)
		return func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fixable.New("push takes flags only, got %q (did you mean --source %s?)", strings.Join(args, " "), args[0])
			}
			plat := platform.New(platform.Detect(stdio.Getenv), platform.Options{Getenv: stdio.Getenv, Out: stdio.Out, Log: stdio.Err, JSON: f.output == "json"})
			err := runPush(ctx, &f, stdio, plat)
			if err != nil {
				plat.Fail(Message(err))
			}
			return err
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
	for _, d := range f.destinations {
		repo, err := name.NewRepository(d)
		if err != nil || strings.ContainsAny(d, "@") || strings.Count(d, ":") > 1 {
			return fixable.New("--destination %q is not REGISTRY/REPOSITORY (tags go in --tag)", d)
		}
		if _, isECR := credhelper.ParseHost(repo.RegistryStr()); len(f.destinations) > 1 && isECR {
			return fixable.New("--destination %q: several destinations work for registries other than ECR; for ECR use --repository with --replicate-to", d)
		}
	}
	for _, h := range f.googleHosts {
		if err := googleauth.CheckHost(h); err != nil {
			return err
		}
	}
	switch {
	case f.repository == "" && f.destination == "":
		return fixable.New("--repository is required: the ECR repository to push to (or --destination REGISTRY/REPO)")
	case f.repository != "" && f.destination != "":
		return fixable.New("--repository and --destination are exclusive: use --repository for ECR in the ci account, --destination for a full reference")
	case f.repository != "":
		if len(f.repository) < 2 || len(f.repository) > 256 || !repositoryRe.MatchString(f.repository) {
			return fixable.New("--repository %q is not a valid ECR repository name: lower-case letters, digits and ._-/ separators, 2-256 characters", f.repository)
		}
	default:
		if _, err := name.NewRepository(f.destination); err != nil || strings.Contains(f.destination, "@") || strings.Count(f.destination, ":") > 1 {
			return fixable.New("--destination %q is not REGISTRY/REPOSITORY (tags go in --tag)", f.destination)
		}
	}
	if len(f.tags) == 0 {
		return fixable.New("--tag is required: at least one tag to push (repeatable or comma-separated)")
	}
	seen := map[string]bool{}
	var tags listFlag
	for _, t := range f.tags {
		if !tagRe.MatchString(t) {
			if len(t) > 128 {
				return fixable.New("--tag %.20q… is %d characters: tags are at most 128", t, len(t))
			}
			return fixable.New("--tag %q is not a valid tag: letters, digits, _ . - (not starting with . or -), at most 128 characters", t)
		}
		if !seen[t] {
			seen[t] = true
			tags = append(tags, t)
		}
	}
	f.tags = tags
	if f.platform != "" {
		if _, err := push.ParsePlatform(f.platform); err != nil {
			return fixable.Wrap(err, fmt.Sprintf("--platform %q must be OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8", f.platform))
		}
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
	log := newLogger(stdio.Err)
	start := time.Now()

	// ECR unless --destination names another registry.
	ecrDest := f.destination == ""
	var destAccount, destRegion string
	if !ecrDest {
		repo, _ := name.NewRepository(f.destination)
		if r, ok := credhelper.ParseHost(repo.RegistryStr()); ok {
			ecrDest, destAccount, destRegion = true, r.Account, r.Region
		}
	}
	// Identity flags are validated even when unused, so a typo never passes silently.
	opts, idErr := f.id.options(stdio)
	if ecrDest && idErr != nil {
		return idErr
	}
	srcOpts := []push.SourceOption{push.WithSourceLogger(log), push.WithDockerHost(stdio.Getenv("DOCKER_HOST"))}
	if f.platform != "" {
		p, _ := push.ParsePlatform(f.platform)
		srcOpts = append(srcOpts, push.WithPlatform(p))
	}
	var sess *federate.Session
	if f.googleCreds != "" {
		kc, err := sourceKeychain(ctx, f.googleCreds, stdio, func() *federate.Session { return sess }, f.googleHosts...)
		if err != nil {
			return err
		}
		srcOpts = append(srcOpts, push.WithSourceKeychain(kc))
	}
	src, err := push.ParseSource(f.source, srcOpts...)
	if err != nil {
		return err
	}
	defer src.Close()

	if ecrDest {
		if destRegion != "" {
			opts.Region = destRegion
		}
		opts.Mask = plat.Mask
		end := plat.Group("Federate")
		sess, err = federate.Federate(ctx, opts)
		end()
		if err != nil {
			return err
		}
		if destAccount != "" && sess.Account != "" && destAccount != sess.Account {
			log.Info("pushing into another account's registry", "registry", destAccount, "identity", sess.Account)
		}
	}

	end := plat.Group("Read " + src.String())
	art, err := src.Load(ctx)
	end()
	if err != nil {
		return err
	}
	log.Info("source loaded", "image", src.String(), "digest", art.Digest.String(), "mediaType", string(art.MediaType))

	pushOpts := []push.Option{push.WithJobs(f.jobs), push.WithLogger(log), push.WithProgress(stdio.Err, isTerminal(stdio.Err))}
	repoName := f.repository
	var pub push.Publisher
	if ecrDest {
		if f.destination != "" {
			repo, _ := name.NewRepository(f.destination)
			repoName = repo.RepositoryStr()
			pushOpts = append(pushOpts, push.WithRegistryID(destAccount))
		}
		// Native replication is checked (and merged, when asked) before anything is pushed.
		plan, err := f.replication.prepare(ctx, sess, repoName, stdio, log)
		if err != nil {
			return err
		}
		pushOpts = append(pushOpts, push.WithCreateRepository(f.createRepository), push.WithTagImmutability(f.tagImmutability),
			push.WithScanOnPush(f.scanOnPush), push.WithKMSKey(f.kmsKey))
		pub, err = push.NewECR(ctx, sess.Config, repoName, pushOpts...)
		if err != nil {
			return err
		}
		defer pub.Close()
		end = plat.Group("Push " + repoName)
		res, err := pub.Publish(ctx, art, f.tags)
		end()
		if err != nil {
			return err
		}
		report := reportOf(res, sess.Account, opts.Region, start)
		end = plat.Group("Replicate")
		report.Replication, err = plan.finish(ctx, art, res, f.tags)
		end()
		report.Seconds = time.Since(start).Seconds()
		if rerr := plat.Report(report); rerr != nil {
			log.Warn("report: " + rerr.Error())
		}
		return err
	}
	var pubs []push.Publisher
	for _, d := range f.destinations {
		repo, _ := name.NewRepository(d)
		p, err := push.NewRegistry(repo, authn.DefaultKeychain, pushOpts...)
		if err != nil {
			return err
		}
		defer p.Close()
		pubs = append(pubs, p)
	}
	// Several destinations share the loaded (and, for archives, compressed) source.
	pub = pubs[0]
	if len(pubs) > 1 {
		pub = push.MultiPublisher(pubs...)
	}
	res, err := pub.Publish(ctx, art, f.tags)
	if err != nil {
		return err
	}
	report := reportOf(res, "", "", start)
	return plat.Report(report)
}

func reportOf(res *push.Result, account, region string, start time.Time) *platform.Report {
	var tags []string
	for _, t := range res.Tags {
		tags = append(tags, t.Tag)
	}
	images := []platform.Image{{URI: res.Ref, Tags: tags}}
	if len(res.Destinations) > 0 {
		images = nil
		for _, d := range res.Destinations {
			if d == nil {
				continue
			}
			var dt []string
			for _, t := range d.Tags {
				dt = append(dt, t.Tag)
			}
			images = append(images, platform.Image{URI: d.Ref, Tags: dt})
		}
	}
	return &platform.Report{
		Digest:        res.Digest.String(),
		MediaType:     string(res.MediaType),
		Registry:      res.Registry,
		Repository:    res.Repository,
		AccountID:     account,
		Region:        region,
		Images:        images,
		Size:          res.Size,
		Layers:        res.Layers,
		BytesUploaded: res.BytesUploaded,
		BytesSkipped:  res.BytesPresent,
		Seconds:       time.Since(start).Seconds(),
	}
}

func isTerminal(w any) bool {
	if f, ok := w.(interface{ Fd() uintptr }); ok {
		return term.IsTerminal(int(f.Fd()))
	}
	return false
}
