# The ecrpush image: the GitHub Action (action.yml builds it from a fresh clone), the Cloud Build builder
# (cloudbuild/cloudbuild.yaml) and `docker run`. One static binary on distroless, about 16 MB.
#
# One Dockerfile for every builder (test/ship's TestDockerfileLogic runs both readings):
# - BuildKit (docker buildx, Docker 23+ `docker build`): BUILDPLATFORM, TARGETOS and TARGETARCH are set, the
#   build stage runs on the build machine's platform and cross-compiles, so a multi-arch build needs no
#   emulation.
# - The legacy builder (DOCKER_BUILDKIT=0, Docker 20.10 without buildx, e.g. gcr.io/cloud-builders/docker)
#   sets no platform args: `${BUILDPLATFORM:-linux}` is then "linux", which the engine completes with its
#   own architecture, and the empty GOOS/GOARCH make Go build for the machine it runs on.
# The platform ARGs are declared without defaults on purpose: a default (ARG TARGETARCH=amd64) replaces
# BuildKit's automatic value, and every arm64 image would carry an amd64 binary.
#
# Base images are pinned by digest (multi-arch indexes); the tag each digest was taken from is in the
# reference, and Dependabot (.github/dependabot.yml) moves both. The Go image must be at least go.mod's
# go version: the official image sets GOTOOLCHAIN=local.
FROM --platform=${BUILDPLATFORM:-linux} golang:1.26.8@sha256:3c3e25a4da13fd0478eed2df1eb35a0e667094a7124d3993a6a1d30f71c17e79 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X github.com/ecrpush/ecrpush/internal/cli.Version=${VERSION}" -o /out/ecrpush .

# Static Debian 12 distroless (gcr.io/distroless/static-debian12:latest): CA certificates, tzdata,
# /etc/passwd, no shell. It runs as root on purpose: Cloud Build's and GitHub's docker socket
# (docker-daemon: sources) is owned by root, and GitHub mounts the workspace owned by the runner's user.
FROM gcr.io/distroless/static-debian12:latest@sha256:d75cdd72874d4790092fcb1b058493ecf6bb5bf2b2b897045b00ff01d91843f2
ARG VERSION=dev
ARG REVISION=
# OCI labels: GHCR links the package to its repository through image.source. No LICENSE file is in the
# repository yet, so the licence is NOASSERTION (SPDX's word for "not stated") until one is added.
LABEL org.opencontainers.image.title="ecrpush" \
      org.opencontainers.image.description="Push a container image to Amazon ECR with CI federation (no stored keys) and replicate it" \
      org.opencontainers.image.source="https://github.com/ecrpush/ecrpush" \
      org.opencontainers.image.url="https://github.com/ecrpush/ecrpush" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="NOASSERTION"
COPY --from=build /out/ecrpush /ecrpush
USER 0:0
ENTRYPOINT ["/ecrpush"]
