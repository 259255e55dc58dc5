# The ecrpush image: the GitHub Action (action.yml builds it from a fresh clone), the Cloud Build builder
# (cloudbuild/cloudbuild.yaml) and `docker run`. One static binary on distroless, about 16 MB.
#
# The build stage runs on the build machine's platform and cross-compiles for the target, so a multi-arch
# buildx build (release.yml) needs no emulation. Without BuildKit the platform args are empty and Go builds
# for the machine it runs on.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X github.com/ecrpush/ecrpush/internal/cli.Version=${VERSION}" -o /out/ecrpush .

# Static Debian 12 distroless: CA certificates, tzdata, /etc/passwd, no shell. It runs as root on purpose:
# Cloud Build's and GitHub's docker socket (docker-daemon: sources) is owned by root, and GitHub mounts the
# workspace owned by the runner's user.
FROM gcr.io/distroless/static-debian12
COPY --from=build /out/ecrpush /ecrpush
USER 0:0
ENTRYPOINT ["/ecrpush"]
