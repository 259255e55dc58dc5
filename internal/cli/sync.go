package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/googleauth"
	"github.com/ecrpush/ecrpush/internal/mirror"
	"github.com/ecrpush/ecrpush/internal/pipeline"
	"github.com/ecrpush/ecrpush/internal/push"
	"github.com/ecrpush/ecrpush/internal/replicate"
	"github.com/ecrpush/ecrpush/internal/supplychain"
)

func syncCmd() command {
	return command{name: "sync", short: "mirror third-party images listed in a file into ECR, pinned by digest, and replicate them", flags: func(fs *flag.FlagSet, stdio IO) func(context.Context, []string) error {
		var id identityFlags
		id.register(fs)
		file := fs.String("file", "", "images file (YAML): a repository rule and the images to mirror")
		lockFile := fs.String("lock", "", "lock file to write: each source with its ECR URI@digest (default: the images file's name + .lock.json)")
		locked := fs.Bool("locked", false, "copy the digests the lock file recorded instead of resolving tags again")
		googleCreds := fs.String("source-google-credentials", "", "Google credential configuration for Artifact Registry / GCR sources (workload identity federation, AWS-sourced configs use the federated session)")
		jobs := fs.Int("jobs", push.DefaultJobs, "parallel blob uploads per image")
		scanOnPush := fs.Bool("scan-on-push", true, "create repositories with scan on push")
		tagImmutability := fs.Bool("tag-immutability", false, "create repositories with immutable tags")
		createRepository := fs.Bool("create-repository", true, "create missing repositories (else a missing one is an error)")
		kmsKey := fs.String("kms-key", "", "create repositories encrypted with this KMS key ARN")
		referrers := fs.String("referrers", "all", "what travels with each image from its source: all, none, or signatures,sboms,attestations")
		output := fs.String("output", "text", "text or json")
		var rep replicationFlags
		rep.register(fs)
		var extra settingsFlags
		extra.registerExtra(fs)
		return func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fixable.New("sync takes flags only, got %q (did you mean --file %s?)", strings.Join(args, " "), args[0])
			}
			if *file == "" {
				return fixable.New("--file is required: the images file listing what to mirror")
			}
			if *output != "text" && *output != "json" {
				return fixable.New("--output %q is not text or json", *output)
			}
			if *jobs < 1 || *jobs > 64 {
				return fixable.New("--jobs %d is out of range: 1 to 64", *jobs)
			}
			if err := rep.validate(false); err != nil {
				return err
			}
			extra.create, extra.tagImmutability, extra.scanOnPush, extra.kmsKey = *createRepository, *tagImmutability, *scanOnPush, *kmsKey
			settings, err := extra.build()
			if err != nil {
				return err
			}
			sel, err := supplychain.ParseSelection(*referrers)
			if err != nil {
				return err
			}
			if *kmsKey != "" && !strings.HasPrefix(*kmsKey, "arn:aws") {
				return fixable.New("--kms-key %q must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)", *kmsKey)
			}
			f, err := mirror.Load(*file)
			if err != nil {
				return err
			}
			items, err := f.Items()
			if err != nil {
				return err
			}
			lockPath := *lockFile
			if lockPath == "" {
				lockPath = mirror.LockPath(*file)
			}
			lock, err := mirror.ReadLock(lockPath)
			if err != nil {
				return err
			}
			opts, err := id.options(stdio)
			if err != nil {
				return err
			}
			var googleHosts []string
			for _, it := range items {
				if it.Google {
					googleHosts = append(googleHosts, it.Ref.Context().RegistryStr())
				}
			}
			if len(googleHosts) > 0 && *googleCreds == "" {
				return fixable.New("images marked google: true need --source-google-credentials FILE (a Google credential configuration)")
			}
			job := pipeline.SyncJob{
				Identity: opts,
				Items:    items,
				Lock:     lock,
				Locked:   *locked,
				Keychain: func(ctx context.Context, sess *federate.Session) (authn.Keychain, error) {
					return sourceKeychain(ctx, *googleCreds, stdio, func() *federate.Session { return sess }, googleHosts...)
				},
				Settings:  pipeline.Settings{RepositorySettings: settings},
				Upload:    pipeline.Upload{Jobs: *jobs},
				Referrers: sel,
				Replication: pipeline.Replication{To: rep.to, Mode: rep.mode, Configure: rep.configure, Prefix: rep.prefix,
					Timeout: rep.timeout, RoleName: rep.roleName, RestoreArchived: extra.restoreArchived},
			}
			if *output == "text" {
				job.Report = func(r mirror.Result) { writeSyncLine(stdio, r) }
			}
			env := pipeline.Env{Platform: stdio.platform(), Log: newLogger(stdio.Err), Progress: stdio.Err, Terminal: isTerminal(stdio.Err), Out: stdio.Out}
			results, newLock, err := pipeline.Sync(ctx, env, job)
			if newLock != nil {
				if werr := newLock.Write(lockPath); werr != nil {
					return werr
				}
			}
			if *output == "json" {
				if jerr := writeJSON(stdio.Out, syncJSON(results, lockPath)); jerr != nil {
					return jerr
				}
			} else if newLock != nil {
				fmt.Fprintf(stdio.Out, "lock file: %s\n", lockPath)
			}
			return err
		}
	}}
}

func writeSyncLine(stdio IO, r mirror.Result) {
	switch {
	case r.Err != nil:
		fmt.Fprintf(stdio.Out, "failed   %s: %s\n", r.Item.Source, strings.TrimPrefix(Message(r.Err), "ecrpush: "))
	case r.Copied:
		fmt.Fprintf(stdio.Out, "copied   %s -> %s (%d bytes uploaded)\n", r.Item.Source, r.Entry.URI, r.BytesUploaded)
	default:
		fmt.Fprintf(stdio.Out, "present  %s -> %s\n", r.Item.Source, r.Entry.URI)
	}
	if len(r.Replication) > 0 {
		_ = replicate.WriteTable(stdio.Out, r.Replication)
	}
}

type syncImage struct {
	Source        string             `json:"source"`
	Status        string             `json:"status"` // copied, present, failed
	Error         string             `json:"error,omitempty"`
	BytesUploaded int64              `json:"bytesUploaded"`
	Seconds       float64            `json:"seconds"`
	Lock          *mirror.LockEntry  `json:"lock,omitempty"`
	Replication   []replicate.Status `json:"replication,omitempty"`
}

func syncJSON(results []mirror.Result, lockPath string) any {
	out := struct {
		Lock   string      `json:"lockFile"`
		Images []syncImage `json:"images"`
	}{Lock: lockPath}
	for _, r := range results {
		im := syncImage{Source: r.Item.Source, BytesUploaded: r.BytesUploaded, Seconds: r.Seconds, Replication: r.Replication}
		switch {
		case r.Err != nil:
			im.Status, im.Error = "failed", strings.TrimPrefix(Message(r.Err), "ecrpush: ")
		case r.Copied:
			im.Status = "copied"
		default:
			im.Status = "present"
		}
		if r.Err == nil {
			e := r.Entry
			im.Lock = &e
		}
		out.Images = append(out.Images, im)
	}
	return out
}

// sourceKeychain is the keychain sources are read with (googleauth.SourceKeychain): a Google credential
// configuration's access tokens go to Google's registries and to hosts only. An AWS-sourced configuration
// signs with sess when the command federated (looked up when the first token is needed), else with the
// AWS default credential chain.
func sourceKeychain(ctx context.Context, googleFile string, stdio IO, sess func() *federate.Session, hosts ...string) (authn.Keychain, error) {
	return googleauth.SourceKeychain(ctx, googleFile, googleauth.Options{
		TokenURL:          stdio.Getenv(googleauth.TokenURLEnv),
		IAMCredentialsURL: stdio.Getenv(googleauth.IAMCredentialsURLEnv),
		Mask:              stdio.platform().Mask,
		AWS: googleauth.SessionOrDefault(func() (aws.Config, bool) {
			s := sess()
			if s == nil {
				return aws.Config{}, false
			}
			return s.Config, true
		}),
	}, hosts...)
}
