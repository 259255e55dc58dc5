package pipeline

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// CheckTarget validates where a push goes, before anything touches the network: an ECR repository in the
// ci registry (repository), or full REGISTRY/REPOSITORY references (destinations; several only for
// registries other than ECR). ecrDest reports whether the image goes to ECR.
func CheckTarget(repository string, destinations []string) (ecrDest bool, err error) {
	for _, d := range destinations {
		repo, err := name.NewRepository(d)
		if err != nil || strings.ContainsAny(d, "@") || strings.Count(d, ":") > 1 {
			return false, fixable.New("--destination %q is not REGISTRY/REPOSITORY (tags go in --tag)", d)
		}
		if _, isECR := ecr.ParseHost(repo.RegistryStr()); isECR {
			if len(destinations) > 1 {
				return false, fixable.New("--destination %q: several destinations work for registries other than ECR; for ECR use --repository with --replicate-to", d)
			}
			ecrDest = true
		}
	}
	switch {
	case repository == "" && len(destinations) == 0:
		return false, fixable.New("--repository is required: the ECR repository to push to (or --destination REGISTRY/REPO)")
	case repository != "" && len(destinations) > 0:
		return false, fixable.New("--repository and --destination are exclusive: use --repository for ECR in the ci account, --destination for a full reference")
	case repository != "":
		return true, ecr.CheckRepository("--repository", repository)
	}
	return ecrDest, nil
}

// CheckTags validates the tags and drops repeats, keeping the order.
func CheckTags(tags []string) ([]string, error) {
	if len(tags) == 0 {
		return nil, fixable.New("--tag is required: at least one tag to push (repeatable or comma-separated)")
	}
	seen := map[string]bool{}
	var out []string
	for _, t := range tags {
		if err := ecr.CheckTag("--tag", t); err != nil {
			return nil, err
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, nil
}
