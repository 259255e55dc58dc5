// Package googleauth reads images from Google's registries (Artifact Registry, Container Registry) or
// any registry that takes Google access tokens, with a Google credential configuration file: a service
// account key, or a workload identity federation configuration ("type": "external_account"). For a
// configuration whose credential source is AWS ("environment_id": "aws1", the only one Google's
// libraries accept) — the one gcloud writes for jobs on AWS-hosted runners — the AWS credentials come
// from the caller (ecrpush's federated session, else the AWS default credential chain) through
// golang.org/x/oauth2/google/externalaccount's AwsSecurityCredentialsSupplier, so Google's STS
// receives the SigV4-signed GetCallerIdentity request the library builds; everything else goes to
// golang.org/x/oauth2/google unchanged. The token exchange is never written by hand here. Every Google
// call times out and is retried on network errors, 408, 429 and 5xx (NewHTTPClient). It hands the access
// token to go-containerregistry as the oauth2accesstoken user, as gcloud's docker helper does, and only
// to Google's registry hosts (*.pkg.dev, gcr.io, *.gcr.io) and hosts named explicitly; every token passes
// through Options.Mask before it is handed out, and none is ever logged.
package googleauth
