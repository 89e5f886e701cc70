# syntax=docker/dockerfile:1
# Build: a static authd binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/authd ./cmd/authd

# Run: distroless static, non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/authd /usr/local/bin/authd
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/authd"]
CMD ["serve"]
