# Build: the release binary (libwebp is compiled from source by its crate,
# with the image's C compiler).
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
# usvg with Signet's text-layout patches (vendor/usvg/PATCHES.md).
COPY vendor vendor
# The registry's schema migrations are embedded in the binary.
COPY migrations migrations
COPY benches benches
RUN cargo build --release --locked --bin signet

# Run: a slim image, an unprivileged user, templates and fonts included.
FROM debian:bookworm-slim
# CJK, colour emoji and the scripts fonts/ has no face for are too large
# to ship in fonts/; the server loads them from these packages' paths (see
# `extra_fonts`).
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-noto-cjk fonts-noto-color-emoji fonts-noto-core \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin signet
WORKDIR /app
COPY --from=build /src/target/release/signet /usr/local/bin/signet
COPY templates templates
COPY fonts fonts
# The registry's SQLite file (data_dir defaults to data/ beside the config);
# a volume, so certificates outlive the container.
RUN mkdir -p /app/data && chown signet /app/data
VOLUME /app/data
ENV SIGNET_LISTEN=0.0.0.0:8080
USER signet
EXPOSE 8080
# bash's /dev/tcp keeps curl out of the image.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["signet"]
# The configuration (accounts and secrets) is mounted at /app/signet.toml;
# without it the server does not start, rather than serve the public demo
# secret on every interface (`serve --demo` asks for that explicitly).
CMD ["serve", "--config", "/app/signet.toml"]
