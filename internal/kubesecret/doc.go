// Package kubesecret renders the image pull Secret a Kubernetes cluster outside AWS needs to pull from
// ECR: a kubernetes.io/dockerconfigjson Secret whose .dockerconfigjson holds one auths entry per
// registry host, with the ECR token's expiry recorded in an annotation. It validates the namespace and
// name the way the API server does, so a manifest it prints is never refused by kubectl apply. It
// never fetches tokens (the caller does) and never talks to a cluster.
package kubesecret
