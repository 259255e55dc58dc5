// Package credhelper is the ECR side of ecrpush's docker credential helper: it recognises ECR
// registry hosts the way amazon-ecr-credential-helper does (account, region, FIPS, dual-stack, China
// and the isolated partitions), plus hosts an operator maps explicitly (a pull-through proxy, a VPC
// endpoint alias, the sandbox's 127.0.0.1:PORT registries) or that an earlier GetAuthorizationToken
// named as its proxyEndpoint; it keeps registry tokens in an on-disk cache (one 0600 file per role and
// region, in a 0700 directory) and fetches a new one once half the cached one's lifetime has passed,
// that lifetime ending no later than the role session that fetched the token (CapToCredentials: ECR
// reports 12 hours, and a token has been seen to die with its session); a fetch that STS or ECR does not
// answer gives up after FetchTimeout, so a registry waiting on `get` is never held for minutes; and it
// answers the docker credential-helper protocol (get, store, erase, list) through
// docker-credential-helpers' own handler. It never federates itself: the caller hands it a function
// that returns a fresh token for a registry, so the identity (token file, GitHub, GCP, default chain)
// stays the command line's business. It never logs a token or writes one anywhere but the cache.
package credhelper
