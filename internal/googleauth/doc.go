// Package googleauth reads images from Google's registries (Artifact Registry, Container Registry) or
// any registry that takes Google access tokens, with a Google credential configuration file: a service
// account key, or a workload identity federation configuration ("type": "external_account"). For a
// configuration whose credential source is AWS ("environment_id": "aws1") — the one gcloud writes for
// jobs on AWS-hosted runners — the AWS credentials come from the caller (ecrpush's federated session)
// through golang.org/x/oauth2/google/externalaccount's AwsSecurityCredentialsSupplier, so Google's STS
// receives the SigV4-signed GetCallerIdentity request the library builds; everything else goes to
// golang.org/x/oauth2/google unchanged. The token exchange is never written by hand here. It hands the
// access token to go-containerregistry as the oauth2accesstoken user, as gcloud's docker helper does,
// and never logs a token.
package googleauth
