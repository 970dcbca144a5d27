# syntax=docker/dockerfile:1

# promptsync as a container: `watch` by default (the Kubernetes sidecar, see
# examples/kubernetes/), or any other subcommand (`docker run IMAGE sync`).
# tests/it/examples/docker.rs reads this file and runs its ENTRYPOINT + CMD, ENV and
# WORKDIR against the emulator, so what it says is what the CI suite ran.

# ---- build: a release binary from the locked dependency set ----------------------
# The toolchain the project is built and tested with (Rust 1.95).
FROM rust:1.95-slim-bookworm AS builder

# Versions are not pinned: Debian replaces them with every security update, so a pin
# would break the build within weeks; the base image's release (bookworm) pins them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# The whole workspace: the root crate (the promptsync binary) and its member emulator/
# (the in-process emulator behind `--emulator`), which the binary links. The registry
# and the target directory are BuildKit caches, so a source change recompiles the
# workspace, not its dependencies.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --package promptsync --bin promptsync \
    && install -m 0755 target/release/promptsync /usr/local/bin/promptsync

# ---- runtime: a small image, no build tools, running as a non-root user ------------
# The same Debian release as the builder, so the binary finds the glibc it was linked
# against.
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="promptsync" \
      org.opencontainers.image.description="GitOps sync daemon: keeps LLM prompts in a git repository in sync with the Respan prompt API" \
      org.opencontainers.image.source="https://github.com/promptsync/promptsync" \
      org.opencontainers.image.licenses="Apache-2.0"

# ca-certificates: the trust roots for https to the API and to a git host;
# openssh-client: the `ssh` a remote source over ssh:// runs (and `timeout`, from
# coreutils, which bounds it). Nothing else is needed: libgit2 and gix are linked in,
# promptsync never runs git. Not pinned, as above.
# uid/gid 65533 is the user kubernetes git-sync runs as: the repository it checks out
# on a shared volume is then owned by promptsync's own user, which git's (libgit2's)
# owner check requires, without turning that check off.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65533 promptsync \
    && useradd --uid 65533 --gid 65533 --no-log-init --create-home \
        --home-dir /home/promptsync --shell /usr/sbin/nologin promptsync \
    && mkdir /repo \
    && chown 65533:65533 /repo

COPY --from=builder /usr/local/bin/promptsync /usr/local/bin/promptsync

# No log-format setting: `watch` logs JSON by itself when stderr is not a terminal (a
# container under Kubernetes), and pretty lines under `docker run -it`.
ENV HOME=/home/promptsync

USER 65533:65533
# The repository: mount it here, or pass --repo (the sidecar passes git-sync's link).
WORKDIR /repo
# The probe server: /healthz, /readyz, /metrics, /status, POST /reconcile. watch.listen
# defaults to loopback; in a container the probes and Prometheus come from outside, so
# the image listens on every interface, explicitly. POST /reconcile from another host
# needs watch.reconcile_token_file (loopback peers only without it).
# No HEALTHCHECK: Kubernetes probes those routes itself (examples/kubernetes/).
ENV PROMPTSYNC_WATCH__LISTEN=0.0.0.0:8080
EXPOSE 8080

ENTRYPOINT ["promptsync"]
CMD ["watch"]
