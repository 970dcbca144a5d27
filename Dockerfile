# syntax=docker/dockerfile:1

# ---- build: a release binary from the locked dependency set ----------------------
FROM rust:1.95-slim-bookworm AS builder

# Versions are not pinned: Debian replaces them with every security update, so a pin
# would break the build within weeks; the base image's release (bookworm) pins them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# The registry and the target directory are BuildKit caches, so a source change
# recompiles the workspace, not its dependencies.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin promptsync \
    && install -m 0755 target/release/promptsync /usr/local/bin/promptsync

# ---- runtime: a small image, running as a non-root user ----------------------------
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="promptsync" \
      org.opencontainers.image.description="GitOps sync daemon: keeps LLM prompts in a git repository in sync with the Respan prompt API" \
      org.opencontainers.image.licenses="Apache-2.0"

# ca-certificates for https to the API; git for people who open a shell in the
# container (promptsync itself uses libgit2). Not pinned, for the reason given above.
# uid/gid 65533 is the user kubernetes git-sync runs as: the repository it checks out
# is then owned by promptsync's user, which libgit2's owner check requires.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65533 promptsync \
    && useradd --uid 65533 --gid 65533 --create-home --home-dir /home/promptsync \
        --shell /usr/sbin/nologin promptsync

COPY --from=builder /usr/local/bin/promptsync /usr/local/bin/promptsync

# Containers log to a collector: JSON by default (PROMPTSYNC_LOG__FORMAT=pretty undoes it).
ENV PROMPTSYNC_LOG__FORMAT=json

USER 65533:65533
WORKDIR /repo
# watch.listen: health, readiness and metrics.
EXPOSE 8080

ENTRYPOINT ["promptsync"]
CMD ["watch"]
