# The pipeline host and the NuOrder plugin as one small image:
#
#   docker build -t pipehost .
#   docker run --rm -v "$PWD:/work" -e NUORDER_CONSUMER_KEY=... pipehost run
#
# Static binaries (CGO off) on an empty base, run as a non-root user. The
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
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./pipeline ./plugins/nuorder-plugin \
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
COPY --from=build /out/pipeline /out/nuorder-plugin /usr/local/bin/
USER 65532:65532
WORKDIR /work
ENV PIPELINE_FILE=/work/pipeline.hcl \
    PIPELINE_LOG_FORMAT=json \
    HOME=/work
# go-plugin talks to the plugin over a Unix socket in $TMPDIR.
VOLUME ["/work", "/tmp"]
ENTRYPOINT ["/usr/local/bin/pipeline"]
CMD ["run"]
