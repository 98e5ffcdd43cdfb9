# The pipeline host and the NuOrder plugin as one small image:
#
#   docker build -t pipehost .
#   docker run --rm -v "$PWD:/work" -e NUORDER_CONSUMER_KEY=... pipehost run
#
# Static binaries on an empty base, run as a non-root user: the plugin with
# cgo off, the host with cgo on for the DuckDB sink, linked statically
# (glibc, libstdc++ and DuckDB inside the binary; Go's own DNS resolver and
# user lookup, so nothing is loaded at run time: make static does the same). The
# pipeline file is read from /work/pipeline.hcl (mount your folder, or set
# PIPELINE_FILE); the default local state and Parquet output land beside it,
# so mount /work writable, or use the PostgreSQL state backend and sink
# (deploy/kubernetes does).

# ---- build ----
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends g++ >/dev/null
# make static: the plugin with cgo off, the host with cgo on, linked
# statically (scripts/empty-root-smoke.sh runs what it builds on an empty
# root in CI).
RUN make static BIN=/out \
 && mkdir -p /rootfs/tmp /rootfs/work /rootfs/etc/ssl/certs \
 && chmod 1777 /rootfs/tmp \
 && chown 65532:65532 /rootfs/work \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && echo 'pipehost:x:65532:65532:pipehost:/work:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'pipehost:x:65532:' > /rootfs/etc/group

# ---- run ----
FROM scratch
COPY --from=build /rootfs/ /
# The plugin sits beside the host, where the host looks for NAME-plugin
# first: pipeline files need no plugin path.
COPY --from=build /out/static/pipeline /out/static/nuorder-plugin /usr/local/bin/
USER 65532:65532
WORKDIR /work
ENV PIPELINE_FILE=/work/pipeline.hcl \
    PIPELINE_LOG_FORMAT=json \
    HOME=/work
# go-plugin talks to the plugin over a Unix socket in $TMPDIR.
VOLUME ["/work", "/tmp"]
ENTRYPOINT ["/usr/local/bin/pipeline"]
CMD ["run"]
