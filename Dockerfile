# edgemeter: a small runtime image, running as a non-root user.
#   docker build -t edgemeter .
#   docker run --rm -v $PWD/edgemeter.toml:/etc/edgemeter/edgemeter.toml edgemeter run --config /etc/edgemeter/edgemeter.toml
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The symbol table is a quarter of the binary (290 MB -> 224 MB); the image
# has no use for it. Benchmarks and profiles build outside the image, with it.
RUN cargo build --release --locked --bin edgemeter \
 && strip target/release/edgemeter

FROM debian:bookworm-slim
# ca-certificates unpinned on purpose: the image takes the distribution's current roots.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin edgemeter
COPY --from=build /src/target/release/edgemeter /usr/local/bin/edgemeter
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/edgemeter"]
CMD ["run", "--config", "/etc/edgemeter/edgemeter.toml"]
